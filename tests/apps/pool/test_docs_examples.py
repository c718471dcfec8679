"""The runnable examples of docs/pools.md (docs/examples/) and of the docstrings."""

from __future__ import annotations

import textwrap

import pytest
from beamlet.apps.pool import _jobs, _pool


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
