"""The optional ``rich`` live views (the ``cli`` extra); plain lines without it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["Rich", "load_rich"]


class Rich:
    """The few rich features the command uses, behind one small interface."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.table import Table

        self._console = Console()
        self._live = Live
        self._table = Table

    def print(self, renderable: Any) -> None:
        """Print ``renderable`` (a table...) on the console."""
        self._console.print(renderable)

    def live(self) -> Any:
        """A ``rich.live.Live`` that is refreshed by ``update(..., refresh=True)``."""
        return self._live(console=self._console, auto_refresh=False, transient=False)

    def table(
        self,
        title: str,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        right: set[int],
        flex: frozenset[int] = frozenset(),
    ) -> Any:
        """A table; the columns in ``right`` aligned right. The columns in ``flex``
        (names, functions) share the width the others leave, cut with an
        ellipsis, so that every column fits a narrow terminal."""
        table = self._table(
            title=title,
            title_justify="left",
            box=None,
            pad_edge=False,
            collapse_padding=True,
            header_style="bold",
            expand=bool(flex),
        )
        for i, header in enumerate(headers):
            table.add_column(
                header,
                justify="right" if i in right else "left",
                no_wrap=True,
                overflow="ellipsis",
                ratio=1 if i in flex else None,
                min_width=6 if i in flex else None,
            )
        for row in rows:
            table.add_row(*row)
        return table


def load_rich() -> Rich | None:
    """``Rich`` if the ``rich`` package is installed, else None."""
    try:
        return Rich()
    except ImportError:
        return None
