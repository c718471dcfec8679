"""The testing guide (docs/testing.md): its example test file passes under pytest, as a user runs it.

The file runs in a fresh pytest process, in an empty directory (no conftest,
no configuration of this repository): so the plugin is found by its entry
point, and the file's own trio mark is what makes its tests run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from docs_checks import DOCS, EXAMPLES, check_guide_shows_examples

GUIDE = DOCS / "testing.md"
EXAMPLE_FILES = sorted(EXAMPLES.glob("testing_*.py"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_the_example_test_file_passes_under_pytest(path: Path, tmp_path: Path) -> None:
    target = tmp_path / path.name
    target.write_text(path.read_text())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(target)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    tests = len(re.findall(r"^async def test_", path.read_text(), flags=re.MULTILINE))
    assert f"{tests} passed" in result.stdout, result.stdout[-3000:]


def test_without_the_trio_mark_the_tests_do_not_run(tmp_path: Path) -> None:
    """What the guide says of a test file without trio mode or the trio mark."""
    [path] = [p for p in EXAMPLE_FILES if p.name == "testing_distributed_app.py"]
    source = path.read_text()
    assert "pytestmark = pytest.mark.trio\n" in source
    target = tmp_path / "test_unmarked.py"
    target.write_text(source.replace("pytestmark = pytest.mark.trio\n", ""))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(target)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode != 0
    assert "async def functions are not natively supported" in result.stdout


def test_the_guide_shows_every_example_as_it_is() -> None:
    check_guide_shows_examples(GUIDE, EXAMPLE_FILES)


def test_the_guide_states_the_simulations_defaults() -> None:
    import inspect

    from beamlet.cluster.simulation import simulated_cluster

    defaults = inspect.signature(simulated_cluster.__wrapped__).parameters  # type: ignore[attr-defined]
    text = GUIDE.read_text()
    assert defaults["ticktime"].default == 4.0 and "`ticktime` is **4 s**" in text
    assert defaults["seed_interval"].default == 1.0 and "`seed_interval` 1 s" in text
