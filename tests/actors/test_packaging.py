"""The built wheel installs into a fresh virtualenv and imports there."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ["actors", "supervisors", "cluster", "apps"]

CHECK = """
import importlib, importlib.resources, json, sys
from beamlet.actors import run, self_pid, send, receive

found = {}
for pkg in ["actors", "supervisors", "cluster", "apps"]:
    module = importlib.import_module("beamlet." + pkg)
    found[pkg] = {
        "file": module.__file__,
        "typed": importlib.resources.files(module).joinpath("py.typed").is_file(),
    }

async def main():
    send(self_pid(), 41)
    return await receive() + 1

found["run"] = run(main)
print(json.dumps(found))
"""


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    for pkg in PACKAGES:
        shutil.copytree(
            REPO / pkg, source / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    for name in ["pyproject.toml", "README.md"]:
        shutil.copy2(REPO / name, source / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    [wheel] = dist.glob("beamlet-*.whl")
    return wheel


@pytest.mark.timeout(300)
def test_wheel_installs_and_imports_in_a_fresh_venv(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith("/METADATA"))
    for pkg in PACKAGES:
        assert f"beamlet/{pkg}/__init__.py" in names
        assert f"beamlet/{pkg}/py.typed" in names
    assert "beamlet/actors/_process.py" in names
    assert not any(n.startswith(("tests/", "docs/", "bench/")) for n in names)
    for requirement in ["trio", "msgpack", "attrs"]:
        assert f"Requires-Dist: {requirement}" in metadata

    venv = tmp_path / "venv"
    # Reuse the installed trio, msgpack and attrs, so that no network is needed.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [str(python), "-c", CHECK],
        cwd=elsewhere,  # outside the repository
        check=True,
        capture_output=True,
        text=True,
    )
    found = json.loads(result.stdout)
    assert found["run"] == 42
    for pkg in PACKAGES:
        # Imported from the wheel in the venv, not from the source tree.
        assert Path(found[pkg]["file"]).is_relative_to(venv), found[pkg]["file"]
        assert found[pkg]["typed"] is True
