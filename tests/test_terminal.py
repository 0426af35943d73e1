"""Terminal output at 80 columns and when piped: whole paths, no ANSI codes, flags, tables."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from xmpspec.cli.common import flag, strip_ansi

ESC = "\x1b"


def _run(args, tmp_path, columns="80", **kw):
    env = {**os.environ, "COLUMNS": columns, "TERM": "xterm-256color"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(["xmpspec", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300, **kw)


def test_wrote_paths_whole_and_no_ansi_when_piped(tmp_path, shared_dir):
    pub = shared_dir / "data/xmp_followup_2023_2024"
    out = tmp_path / ("a_rather_long_output_folder_name_that_does_not_fit" * 2) / "tables"
    res = _run(["tables", str(pub / "published_line_measurements.csv"), "--selection",
                str(pub / "selection_and_observing_log.csv"), "-o", str(out)], tmp_path)
    assert res.returncode == 0, res.stderr
    assert ESC not in res.stdout and ESC not in res.stderr
    wrote = [line for line in res.stdout.splitlines() if line.startswith("wrote ")]
    assert len(wrote) >= 10
    for line in wrote:  # each path on one line, complete, and the file exists
        path = line[len("wrote "):]
        assert (tmp_path / path).exists() or os.path.exists(path), line
        assert len(line) > 80  # longer than the terminal: not folded by xmpspec
    for line in res.stderr.splitlines():
        assert not line.startswith(" ") or "━" in line or not line.strip(), line


def test_help_shows_no_bool_type_and_fits_80_columns(tmp_path):
    res = _run(["measure", "--help"], tmp_path)
    assert res.returncode == 0
    assert "<bool>" not in res.stdout
    assert "--mcmc" in res.stdout and "--plots" in res.stdout
    assert ESC not in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) <= 80


def test_print_table_plain_when_piped_and_rich_in_terminal(tmp_path):
    code = (
        "from xmpspec.cli.common import print_table\n"
        "rows = [('very/long/path/' * 6 + 'frame_0001.fits', 'science', True),\n"
        "        ('b.fits', 'bias', False)]\n"
        "print_table(('file', 'frametype', 'saturated'), rows, title='night log',\n"
        "            nowrap=('file',))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "80"}, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert ESC not in res.stdout
    assert lines[0] == "night log"
    assert lines[1].split() == ["file", "frametype", "saturated"]
    row = [line for line in lines if "frame_0001.fits" in line]
    assert len(row) == 1 and row[0].startswith("very/long/path/" * 6 + "frame_0001.fits")
    assert row[0].split()[-1] == "yes"  # boolean shown as a flag
    assert lines[-1].split() == ["b.fits", "bias"]  # False: empty cell
    # in a terminal (forced): a rich table, the file column never folded over lines
    res = subprocess.run([sys.executable, "-c",
                          "import xmpspec.cli.common as c\n"
                          "from rich.console import Console\n"
                          "c.console = Console(force_terminal=True, width=80, soft_wrap=True)\n" + code.replace(
                              "from xmpspec.cli.common import print_table\n", "")
                          .replace("print_table(", "c.print_table(")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    text = strip_ansi(res.stdout)
    body = [line for line in text.splitlines() if "very/long" in line or "frame_0001" in line]
    # too wide for 80 columns: one block per row, the file name whole on one line
    assert body == ["very/long/path/" * 6 + "frame_0001.fits"]
    assert "  frametype  science" in text and "  saturated  yes" in text
    # a table that fits: a rich table, one line per row
    res = subprocess.run([sys.executable, "-c",
                          "import xmpspec.cli.common as c\n"
                          "from rich.console import Console\n"
                          "c.console = Console(force_terminal=True, width=80, soft_wrap=True)\n"
                          "c.print_table(('file', 'type'), [('a_file_name.fits', 'arc')],"
                          " nowrap=('file',))\n"], capture_output=True, text=True, timeout=120)
    text = strip_ansi(res.stdout)
    assert "│ a_file_name.fits │ arc  │" in text


def test_flags_and_ansi_helpers():
    assert flag(True) == "yes" and flag(False) == "" and flag(None) == ""
    assert flag("True") == "yes" and flag("false") == ""
    import numpy as np
    assert flag(np.ma.masked) == "" and flag(np.bool_(True)) == "yes"
    assert strip_ansi("\x1b[1;38;2;215;48;39m[ERROR]\x1b[0m - x") == "[ERROR] - x"


@pytest.mark.parametrize("stream", ["stderr", "stdout"])
def test_pypeit_log_colours_stripped_when_piped(stream):
    """PypeIt colours its log; through xmpspec's CLI set-up a pipe gets plain text."""
    # PypeIt's own logger when PypeIt is installed (the 'reduce' extra), else a stand-in
    # that colours the same way (a core-only install has no PypeIt to leak colours)
    code = ("import logging, sys\n"
            "from xmpspec.cli.common import setup_logging\n"
            "setup_logging(False, False)\n"
            "try:\n"
            "    from pypeit import log\n"
            "except ImportError:\n"
            "    log = logging.getLogger('pypeit-stand-in')\n"
            "    _h = logging.StreamHandler()\n"
            "    _h.setFormatter(logging.Formatter("
            "'\\x1b[1;33m [%(levelname)s]\\x1b[0m - %(message)s'))\n"
            "    log.addHandler(_h)\n"
            "log.warning('checking the colours')\n"
            f"h = logging.StreamHandler(sys.{stream})\n"
            "h.setFormatter(logging.Formatter('\\x1b[1;31m%(message)s\\x1b[0m'))\n"
            "lg = logging.getLogger('other'); lg.addHandler(h); lg.warning('second')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    both = res.stdout + res.stderr
    assert "checking the colours" in both and "second" in both
    assert ESC not in both
    assert re.search(r"\[WARNING\]", both)


def test_output_into_a_closed_pipe_is_not_an_error(tmp_path):
    """`xmpspec ... | head -3`: the reader leaves early; no internal error, no traceback."""
    res = subprocess.run("xmpspec tables --help | head -3", shell=True, capture_output=True,
                         text=True, cwd=tmp_path, timeout=120,
                         env={**os.environ, "COLUMNS": "80"})
    assert "Usage: xmpspec tables" in res.stdout
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_log_messages_plain_one_line_when_piped(tmp_path):
    """Warnings in a pipe/CI log: one unwrapped 'warning: ...' line each, no rich layout."""
    from xmpspec.io import write_spectrum
    from xmpspec.simulate.spectra import simulate_spectrum
    spec, _ = simulate_spectrum("sdss", 0.03, seed=2, name="ALONG-NAME-THAT-MATCHES-NOTHING")
    folder = tmp_path / ("deep_folder_name_" * 4)
    folder.mkdir()
    write_spectrum(spec, folder / "s.fits")
    (tmp_path / "targets.csv").write_text("name,z\nOTHER,0.03\n")
    res = _run(["measure", str(folder / "s.fits"), "--targets", "targets.csv", "-o", "out"],
               tmp_path)
    assert res.returncode == 0, res.stderr
    warn = [line for line in res.stderr.splitlines() if "no row of" in line]
    assert len(warn) == 1 and warn[0].startswith("warning: ") and len(warn[0]) > 80
    assert str(folder / "s.fits") in warn[0]
    assert ESC not in res.stderr
