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
    assert str(f.resolve()) in cfg.sources
    bad = tmp_path / "bad.toml"
    bad.write_text("[cosmology]\nH1 = 70.0\n")
    with pytest.raises(ConfigError, match="H1"):
        load_config(bad)


def test_cli_overrides_dotted():
    cfg = load_config(search_cwd=False).updated({"measure.significance_gate": 3.0})
    assert cfg["measure"]["significance_gate"] == 3.0
    assert cfg.sources[-1] == "command line"
