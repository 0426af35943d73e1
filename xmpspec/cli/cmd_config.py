"""``xmpspec config``: show the resolved configuration or write a template."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer

from ..errors import InputError
from .app import app
from .common import console, state

config_app = typer.Typer(help="Show the resolved configuration or write an editable copy."
                              "\n\nExamples:\n\n```\n"
                              "xmpspec config show measure\n"
                              "xmpspec config init xmpspec.toml\n```\n",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def show(section: str = typer.Argument(None, help="Only this section (e.g. 'cosmology').")):
    """Print the resolved configuration as JSON.

    The defaults, updated by ./xmpspec.toml and --config.

    Examples:

    ```
    xmpspec config show
    xmpspec --config night.toml config show measure
    ```
    """
    import json
    cfg = state.config
    data = cfg.to_dict() if section is None else {section: cfg[section]}
    console.print_json(json.dumps(data))
    console.print(f"sources: {', '.join(cfg.sources)}", style="dim")


@config_app.command("init")
def init(path: Path = typer.Argument(Path("xmpspec.toml"), help="File to write."),
         force: bool = typer.Option(False, "--force", help="Overwrite an existing file.")):
    """Write the default configuration (all of science.md) to edit.

    Examples:

    ```
    xmpspec config init            # writes ./xmpspec.toml
    ```
    """
    if path.exists() and not force:
        raise InputError("exists (use --force to overwrite)", path)
    from ..config import default_config
    from ..provenance import provenance_lines, provenance_record
    from ..tableio import atomic_path, ensure_output_dir
    text = resources.files("xmpspec").joinpath("data/defaults.toml").read_text()
    # the file is the packaged defaults, whatever configuration is active
    about = provenance_lines(provenance_record(config=default_config(), step="config init"))
    ensure_output_dir(path.parent)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"# {line}\n" for line in about) + text, encoding="utf-8")
    console.print(f"wrote {path}")
