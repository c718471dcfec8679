"""The public surface of beamlet.apps.cli, and the ``beamlet`` script."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import beamlet.apps.cli as cli

REPO = Path(__file__).resolve().parents[3]


def test_public_names() -> None:
    names = {n for n, v in vars(cli).items() if not n.startswith("_") and not inspect.ismodule(v)}
    assert names == {"CliError", "main"}
    for name in names:
        value = getattr(cli, name)
        assert inspect.getdoc(value), name
        assert value.__module__ == "beamlet.apps.cli", name


def test_the_beamlet_script_runs_main() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"beamlet": "beamlet.apps.cli:main"}
    assert "rich" in " ".join(project["optional-dependencies"]["cli"])
