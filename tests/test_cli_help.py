"""``--help`` of every command and subcommand: exit 0, one-line listing, readable examples.

Commands are discovered from the typer app (nothing hard-coded), so a new
command is checked as soon as it is registered. typer renders help in
``rich_markup_mode="markdown"``: an ``Examples:`` block only keeps one command
per line when written as a code block (blank line, then indented lines), and
``<key>``-like text or ``*`` globs vanish outside code; the tests compare the
rendered help with the docstring to catch both. (When ``Examples:`` directly
follows the first line, typer's second ``cleandoc`` strips the code block's
indentation: use a fenced block there.)
"""

from __future__ import annotations

import re

import pytest
import typer.main

from xmpspec.cli import app, main

#: terminal width of the rendered help (the classic terminal: listing rows must fit in it)
WIDTH = 80


def _walk(cmd, path):
    yield path, cmd
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from _walk(sub, [*path, name])


ROOT = typer.main.get_command(app)
COMMANDS = list(_walk(ROOT, []))
IDS = [" ".join(p) or "xmpspec" for p, _ in COMMANDS]


def _help(path, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    monkeypatch.setenv("TERMINAL_WIDTH", str(WIDTH))
    capsys.readouterr()
    try:
        rc = main([*path, "--help"])
    except SystemExit as exc:      # pragma: no cover - main() returns codes
        rc = exc.code
    out = capsys.readouterr().out
    assert rc in (0, None), f"xmpspec {' '.join(path)} --help exited with {rc}"
    return out


def _flat(text: str) -> str:
    return " ".join(text.split())


def _example_lines(doc: str) -> list[str]:
    """Non-empty lines of the docstring's ``Examples:`` block (each physical line,
    continuation lines included)."""
    if "Examples:" not in doc:
        return []
    return [line.strip() for line in doc.split("Examples:", 1)[1].splitlines()
            if line.strip() and not line.strip().startswith("```")]


def test_every_command_is_discovered():
    names = {" ".join(p) for p, _ in COMMANDS}
    # the discovery walks groups too (a group without subcommands would be a bug)
    assert len(names) > 10
    for path, cmd in COMMANDS:
        if hasattr(cmd, "commands"):
            assert cmd.commands, f"group {' '.join(path)} has no subcommands"


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=IDS)
def test_help_renders_examples(path, cmd, capsys, monkeypatch):
    out = _help(path, capsys, monkeypatch)
    doc = cmd.help or ""
    assert "Examples:" in doc, f"xmpspec {' '.join(path)}: no Examples: block in its help"
    lines = out.splitlines()
    heads = [i for i, line in enumerate(lines) if line.strip() == "Examples:"]
    assert heads, f"'Examples:' is not on its own line in:\n{out}"
    after = lines[heads[0] + 1:]
    # stop at the first panel (options/commands)
    stop = next((i for i, line in enumerate(after) if line.lstrip().startswith("╭")), len(after))
    ex = [line.strip() for line in after[:stop] if line.strip()]
    starts = [line for line in ex if line.startswith("xmpspec ") or
              re.match(r"^[A-Z_]+=\S+ xmpspec ", line)]
    assert starts, f"no example line starting with 'xmpspec' after Examples:\n{out}"
    for line in ex:   # collapsed paragraphs put several commands on one line
        assert len(re.findall(r"(?:^|\s)xmpspec\s", line)) <= 1, \
            f"several example commands on one rendered line: {line!r}"
    # every example of the docstring survives the markdown rendering verbatim
    flat = _flat(out)
    for example in _example_lines(doc):
        assert _flat(example) in flat, f"example mangled in the rendered help: {example!r}"
    # <key>-like words outside code are not swallowed as HTML
    for token in set(re.findall(r"<[A-Za-z_][\w.\-]*>", doc)):
        assert token in out, f"{token} vanished from the rendered help of xmpspec " \
                             f"{' '.join(path)}"


@pytest.mark.parametrize(("path", "cmd"), [c for c in COMMANDS if hasattr(c[1], "commands")],
                         ids=[i for i, c in zip(IDS, COMMANDS, strict=True)
                              if hasattr(c[1], "commands")])
def test_group_listing_is_one_line_per_command(path, cmd, capsys, monkeypatch):
    out = _help(path, capsys, monkeypatch)
    lines = out.splitlines()
    top = next(i for i, line in enumerate(lines) if "Commands" in line and "╭" in line)
    rows = []
    for line in lines[top + 1:]:
        if line.lstrip().startswith("╰"):
            break
        body = line.strip().strip("│").rstrip()
        rows.append(body)
    names = sorted(cmd.commands)
    starts = {}
    for i, body in enumerate(rows):
        first = body.split()[0] if body.split() else ""
        if body[:2].strip() and first in names:
            starts[first] = i
    assert sorted(starts) == names, f"listing rows {sorted(starts)} != commands {names}:\n{out}"
    for name, i in starts.items():
        text = rows[i].split(None, 1)[1:] or [""]
        assert text[0].strip(), f"{name}: no one-line help in the listing"
        nxt = rows[i + 1] if i + 1 < len(rows) else ""
        assert not nxt.strip() or nxt.split()[0] in names, \
            f"help of '{name}' wraps onto a second line in the listing:\n{rows[i]}\n{nxt}"
