"""The runnable examples of docs/pools.md (docs/examples/pool_*.py) and of the docstrings."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from beamlet.apps.pool import _cpu, _jobs, _pool
from docs_checks import DOCS, EXAMPLES, check_guide_shows_examples, run_python

GUIDE = DOCS / "pools.md"


def printed(name: str, tmp_path: Path) -> list[str]:
    """Run an example as a script (run_cpu's workers import it) and return its output."""
    return run_python([str(EXAMPLES / name)], cwd=tmp_path).stdout.splitlines()


def shown_output(name: str) -> list[str]:
    """The output the guide shows after the example ``name``."""
    text = GUIDE.read_text()
    after = text[text.index(f"# docs/examples/{name}") :]
    block = re.search(r"```text\n(.*?)```", after, flags=re.DOTALL)
    assert block is not None
    return block.group(1).splitlines()


@pytest.mark.parametrize("name", ["pool_checkout.py", "pool_run_cpu.py", "pool_jobs.py"])
def test_example_prints_what_the_guide_shows(name: str, tmp_path: Path) -> None:
    assert printed(name, tmp_path) == shown_output(name)


def test_guide_shows_the_example_files_as_they_are() -> None:
    # The guide's Python blocks are the example files.
    check_guide_shows_examples(GUIDE, EXAMPLES.glob("pool_*.py"), only_examples=True)


def test_guide_says_jobs_are_lost_with_the_node() -> None:
    text = GUIDE.read_text()
    assert "Jobs are lost if the node dies" in text
    assert "persistent queue" in text
    assert "not beamlet's network wire" in text
    assert "Jobs live in memory only" in (_jobs.__doc__ or "")


def docstring_example(module: object) -> str:
    text = (module.__doc__ or "").split("Example::\n", 1)[1]
    lines = []
    for line in text.splitlines()[1:]:  # [0] is the blank line after "Example::"
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


@pytest.mark.parametrize(
    ("module", "output"),
    [
        (_pool, "PoolStatus(ready=2, busy=0, overflow=0, waiting=0)\n"),
        (_jobs, "['ada@example.com', 'grace@example.com']\n"),
    ],
)
def test_docstring_examples(
    module: object, output: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = docstring_example(module)
    assert "run(main)" in source
    exec(compile(source, f"<example of {module!r}>", "exec"), {"__name__": "example"})
    assert capsys.readouterr().out == output


async def test_run_cpu_docstring_example() -> None:
    source = (_cpu.run_cpu.__doc__ or "").split("Example::\n", 1)[1]
    lines = [line for line in source.splitlines()[1:3]]
    code = textwrap.dedent("\n".join(lines))
    namespace: dict[str, object] = {"run_cpu": _cpu.run_cpu}
    exec(
        compile(
            f"async def example():\n{textwrap.indent(code, '    ')}\n    return digest",
            "<run_cpu example>",
            "exec",
        ),
        namespace,
    )
    digest = await namespace["example"]()  # type: ignore[operator]
    assert isinstance(digest, bytes) and len(digest) == 32
