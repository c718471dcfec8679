"""Packaging: the wheel ships every module, and both installs import and type-check.

A copy of the project is built and installed into fresh virtualenvs, with one
extra subpackage that no configuration names (``beamlet.apps.probe_subpackage``,
with its own ``__init__.py`` and ``py.typed``), so that a new subpackage is
shown to ship without anyone listing it. The modules to find are listed by
walking the source folders, so every subpackage added later is covered too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("actors", "supervisors", "cluster", "apps")
PROBE = "probe_subpackage"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".mypy_cache")

pytestmark = pytest.mark.timeout(300)


def run(
    args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail with its output."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def shipped_files(root: Path) -> list[str]:
    """Every file of the four packages that a wheel must hold, as ``pkg/sub/mod.py``."""
    found = []
    for pkg in PACKAGES:
        for path in (root / pkg).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix == ".py" or path.name == "py.typed":
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def module_names(root: Path) -> list[str]:
    """Every importable module of the four packages, as ``beamlet.pkg.sub.mod``."""
    names = []
    for rel in shipped_files(root):
        if not rel.endswith(".py"):
            continue
        parts = rel.removesuffix(".py").split("/")
        if parts[-1] == "__main__":
            continue  # importing it would run it
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(["beamlet", *parts]))
    return names


IMPORT_ALL = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = importlib.import_module(name).__file__
    except ModuleNotFoundError as error:
        if error.name.split(".")[0] == "beamlet":
            raise
        found[name] = {"needs": error.name}
print(json.dumps(found))
"""


def optional_dependencies() -> set[str]:
    """The import names of every optional extra's requirements (``trio-parallel``: ``trio_parallel``)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    names = set()
    for requirements in config["project"]["optional-dependencies"].values():
        for requirement in requirements:
            names.add(re.split(r"[^A-Za-z0-9_.-]", requirement)[0].replace("-", "_"))
    return names


def import_all(python: Path, names: list[str], cwd: Path) -> dict[str, str]:
    """Import every module in ``names`` with ``python``; return the file each came from.

    A module that needs a third-party package that is not installed is left
    out, if that package belongs to an optional extra (``beamlet.cluster.pytest_plugin``
    needs pytest, say); any other failure fails the test.
    """
    result = run([str(python), "-c", IMPORT_ALL, *names], cwd=cwd)
    found = json.loads(result.stdout)
    optional = optional_dependencies()
    for name, where in list(found.items()):
        if isinstance(where, dict):
            assert where["needs"].split(".")[0] in optional, (name, where)
            del found[name]
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project, with one more subpackage that no configuration names."""
    root = tmp_path_factory.mktemp("project")
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, root / pkg, ignore=IGNORE)
    shutil.copytree(REPO / "src", root / "src", symlinks=True, ignore=IGNORE)
    for name in ["pyproject.toml", "README.md", "docs/examples/readme_example.py"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    probe = root / "apps" / PROBE
    probe.mkdir()
    (probe / "__init__.py").write_text(
        '"""A subpackage that only this test adds."""\n\nfrom ._value import PROBE as PROBE\n'
    )
    (probe / "_value.py").write_text('"""Its module."""\n\nPROBE: int = 1\n')
    (probe / "py.typed").write_text("")
    return root


@pytest.fixture(scope="module")
def wheel(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built as a release is: the sdist first, then the wheel from it."""
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(project)])
    [built] = dist.glob("beamlet-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The python of a fresh virtualenv with the wheel installed."""
    venv = tmp_path_factory.mktemp("wheel-venv")
    # Reuse the installed trio, msgpack and attrs, so that no download is needed.
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)])
    yield python


def readme_install_command() -> str:
    """The README's install step, as it is written there (its first command, up to the
    ``&&`` that runs ``beamlet demo``: tests/apps/cli/test_demo.py runs the demo)."""
    readme = (REPO / "README.md").read_text()
    [command] = re.findall(
        r"^python3 -m pip install -e '\.\[cli\]' && beamlet demo$", readme, flags=re.M
    )
    return command.removesuffix(" && beamlet demo")


@pytest.fixture(scope="module")
def editable_python(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh virtualenv after exactly the README's install command."""
    venv = tmp_path_factory.mktemp("editable-venv")
    run([sys.executable, "-m", "venv", str(venv)])
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    result = run(["sh", "-c", readme_install_command()], cwd=project, env=env)
    assert "Traceback" not in result.stderr
    return venv / "bin" / "python"


def test_the_wheel_holds_every_module_and_nothing_else(project: Path, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
    packaged = sorted(n.removeprefix("beamlet/") for n in names if n.startswith("beamlet/"))
    expected = shipped_files(project)
    assert f"apps/{PROBE}/__init__.py" in expected
    assert f"apps/{PROBE}/py.typed" in expected
    for pkg in PACKAGES:
        assert f"{pkg}/py.typed" in expected
    assert packaged == expected
    assert all(n.startswith(("beamlet/", "beamlet-")) for n in names), names
    for requirement in ["trio", "msgpack", "attrs"]:
        assert f"Requires-Dist: {requirement}" in text
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:")]
    # Anything else is an optional extra.
    assert [r for r in requires if "extra ==" not in r] == [
        "Requires-Dist: trio>=0.27",
        "Requires-Dist: msgpack>=1.0",
        "Requires-Dist: attrs>=23.1",
    ]
    for extra in ["redis", "cpu", "cli", "test"]:
        assert f"Provides-Extra: {extra}" in text


def test_every_module_imports_from_the_installed_wheel(
    project: Path, wheel_python: Path, tmp_path: Path
) -> None:
    names = module_names(project)
    assert f"beamlet.apps.{PROBE}" in names
    assert f"beamlet.apps.{PROBE}._value" in names
    found = import_all(wheel_python, names, cwd=tmp_path)  # outside the project
    # This venv sees every dependency (the tests' own), so nothing was left out.
    assert sorted(found) == sorted(names)
    venv = wheel_python.parent.parent
    for name, file in found.items():
        # From the wheel in the venv, not from a source tree.
        assert Path(file).is_relative_to(venv), (name, file)


WHEEL_RUNS = """
import importlib.resources
from beamlet.actors import receive, run, self_pid, send

async def main():
    send(self_pid(), 41)
    return await receive() + 1

assert run(main) == 42
for pkg in ["actors", "supervisors", "cluster", "apps", "apps.probe_subpackage"]:
    assert importlib.resources.files("beamlet." + pkg).joinpath("py.typed").is_file(), pkg
print("ok")
"""


def test_the_installed_wheel_runs_a_process(wheel_python: Path, tmp_path: Path) -> None:
    assert run([str(wheel_python), "-c", WHEEL_RUNS], cwd=tmp_path).stdout == "ok\n"


def test_the_readme_install_is_editable_and_imports_every_module(
    project: Path, editable_python: Path, tmp_path: Path
) -> None:
    names = module_names(project)
    found = import_all(editable_python, names, cwd=tmp_path)
    # Left out: only modules that need an extra that the README's install does
    # not bring (the pytest plugin needs pytest).
    assert f"beamlet.apps.{PROBE}._value" in found
    for name, file in found.items():
        # From the project's own files, so that an edit is seen at once.
        assert Path(file).resolve().is_relative_to(project.resolve()), (name, file)
    # A subpackage added after the install is importable without reinstalling.
    late = project / "apps" / "late_subpackage"
    late.mkdir()
    (late / "__init__.py").write_text('"""Added after the install."""\n\nLATE = 2\n')
    check = "from beamlet.apps.late_subpackage import LATE; print(LATE)"
    assert run([str(editable_python), "-c", check], cwd=tmp_path).stdout == "2\n"


USER_PROGRAM = '''\
"""A small typed program, as a user of beamlet writes one."""

from typing import Any

from beamlet.actors import GenServer, Pid, call, cast, run
from beamlet.apps.probe_subpackage import PROBE
from beamlet.cluster import NodeUp, RpcError, encode
from beamlet.supervisors import Supervisor


class Counter(GenServer):
    async def init(self, start: int) -> None:
        self.n = start

    async def handle_call(self, request: Any, caller: Any) -> int:
        return self.n

    async def handle_cast(self, request: int) -> None:
        self.n += request


async def main() -> Pid:
    pid = await Supervisor.start_link([Counter.child_spec(0)], strategy="one_for_one")
    cast(pid, PROBE)
    got: Any = await call(pid, "get", timeout=1.0)
    return pid if got else pid


def describe(event: NodeUp) -> bytes:
    return encode(event)


def failed(error: RpcError) -> str:
    return str(error)


def start() -> Pid:
    return run(main)
'''

TYPE_ERRORS = """\
from beamlet.actors import GenServer, Pid, call
from beamlet.cluster import encode

reveal_type(GenServer)
wrong: Pid = encode(1)


async def late() -> None:
    await call("counter", "get", timeout="soon")
"""


def mypy(python: Path, source: str, where: Path) -> subprocess.CompletedProcess[str]:
    """Run mypy --strict on ``source`` as a file of a user project, against ``python``'s env."""
    where.mkdir()
    (where / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    (where / "program.py").write_text(source)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--python-executable",
            str(python),
            "--cache-dir",
            str(where / ".mypy_cache"),
            "program.py",
        ],
        cwd=where,
        capture_output=True,
        text=True,
    )


def test_mypy_sees_the_typed_package_after_the_readme_install(
    editable_python: Path, tmp_path: Path
) -> None:
    result = mypy(editable_python, USER_PROGRAM, tmp_path / "good")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout

    # The same mypy reports a type error in a user's program (so this test can fail).
    result = mypy(editable_python, TYPE_ERRORS, tmp_path / "bad")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "import-not-found" not in out, out
    [revealed] = [line for line in out.splitlines() if "Revealed type" in line]
    assert "GenServer" in revealed and '"Any"' not in revealed, revealed
    assert re.search(r'program\.py:5: error: .*"bytes".*"Pid"', out), out
    assert re.search(r'program\.py:9: error: Argument "timeout" to "call"', out), out


def test_mypy_sees_the_typed_package_in_the_installed_wheel(
    wheel_python: Path, tmp_path: Path
) -> None:
    result = mypy(wheel_python, USER_PROGRAM, tmp_path / "good")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_install_puts_the_beamlet_command_on_the_path(
    editable_python: Path, tmp_path: Path
) -> None:
    script = editable_python.with_name("beamlet")
    assert run([str(script), "--version"], cwd=tmp_path).stdout == "beamlet 0.1.0\n"
