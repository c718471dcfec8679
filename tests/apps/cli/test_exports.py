"""The public surface of beamlet.apps.cli, and the ``beamlet`` script."""

from __future__ import annotations

import tomllib
from pathlib import Path

import beamlet.apps.cli as cli
from export_checks import check_documented, check_homes, check_public_names

REPO = Path(__file__).resolve().parents[3]


def test_public_names() -> None:
    names = {"CliError", "main"}
    check_public_names(cli, names)
    check_documented(cli, names)
    check_homes(cli, names)


def test_the_beamlet_script_runs_main() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"beamlet": "beamlet.apps.cli:main"}
    assert "rich" in " ".join(project["optional-dependencies"]["cli"])
