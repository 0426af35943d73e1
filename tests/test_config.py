import pytest

from xmpspec.config import load_config
from xmpspec.errors import ConfigError


def test_defaults_hold_science_values():
    cfg = load_config(search_cwd=False)
    assert cfg["measure"]["significance_gate"] == 2.0
    assert cfg.get("cosmology.H0") == 67.4
    assert cfg.get("abundances.y07_slope") == 0.836


def test_user_file_overrides_and_unknown_key(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text("[cosmology]\nH0 = 70.0\n")
    cfg = load_config(f)
    assert cfg.get("cosmology.H0") == 70.0
    assert str(f) in cfg.sources  # as given, not resolved
    bad = tmp_path / "bad.toml"
    bad.write_text("[cosmology]\nH1 = 70.0\n")
    with pytest.raises(ConfigError, match="H1"):
        load_config(bad)


def test_cli_overrides_dotted():
    cfg = load_config(search_cwd=False).updated({"measure.significance_gate": 3.0})
    assert cfg["measure"]["significance_gate"] == 3.0
    assert cfg.sources[-1] == "command line"


def test_in_process_command_does_not_leak_its_config(tmp_path):
    # a command run from Python with --config must not change the configuration of
    # later calls (a leaked batch.merge_text_max_rows once broke an unrelated test)
    from xmpspec.cli import main
    from xmpspec.config import get_active_config, set_active_config

    set_active_config(None)
    before = get_active_config()
    cfg_file = tmp_path / "xmpspec.toml"
    cfg_file.write_text("[batch]\nmerge_text_max_rows = 7\n")
    assert main(["-q", "-c", str(cfg_file), "config", "show"]) == 0
    after = get_active_config()
    assert after is before and int(after["batch"]["merge_text_max_rows"]) != 7


def test_library_never_reads_the_working_directory(tmp_path, monkeypatch):
    """Issue 11: ./xmpspec.toml is resolved by the CLI only, library calls use the defaults."""
    from xmpspec.config import get_active_config, set_active_config
    monkeypatch.chdir(tmp_path)
    (tmp_path / "xmpspec.toml").write_text("[measure]\nsignificance_gate = 5.0\n")
    set_active_config(None)
    assert load_config()["measure"]["significance_gate"] == 2.0
    assert get_active_config()["measure"]["significance_gate"] == 2.0
    assert get_active_config().sources == ["defaults"]


def test_cli_resolves_the_working_directory_file_and_passes_it(tmp_path, monkeypatch, capsys):
    import json

    from xmpspec.cli import main
    from xmpspec.config import get_active_config, set_active_config
    monkeypatch.chdir(tmp_path)
    (tmp_path / "xmpspec.toml").write_text("[measure]\nsignificance_gate = 5.0\n")
    set_active_config(None)
    def shown():
        out = capsys.readouterr().out
        return json.loads(out[:out.rindex("}") + 1])["measure"]["significance_gate"]

    assert main(["-q", "config", "show", "measure"]) == 0
    assert shown() == 5.0
    other = tmp_path / "other.toml"           # --config wins over ./xmpspec.toml
    other.write_text("[measure]\nsignificance_gate = 3.0\n")
    assert main(["-q", "-c", str(other), "config", "show", "measure"]) == 0
    assert shown() == 3.0
    # and the command's configuration does not stay active after it
    assert get_active_config()["measure"]["significance_gate"] == 2.0
