"""Markdown tables, the one format of the lab's summaries.

``summary.md`` of every experiment, ``tfgames summarize`` and the mode-collapse protocols'
tables are all written by :func:`markdown_table`; the callers only choose the columns and
format the cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["markdown_table", "number", "step_cell"]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table: the header line, a ``---`` separator per column, one line per row.

    Cells are written with ``str``, so the caller formats numbers as the table should show
    them.

    Args:
        header: the column titles.
        rows: the rows, each one cell per column.

    Returns:
        The table, every line (the last too) ending in a newline.

    Raises:
        ValueError: a row does not have one cell per column.

    Example:
        >>> print(markdown_table(["optimizer", "L_D"], [["sga", f"{1.38629:.4f}"]]), end="")
        | optimizer | L_D |
        | --- | --- |
        | sga | 1.3863 |
    """
    lines = [_line(header), _line(["---"] * len(header))]
    for row in rows:
        cells = list(row)
        if len(cells) != len(header):
            raise ValueError(
                f"Every row of a Markdown table must have one cell per column ({len(header)}: "
                f"{list(header)}). Received a row of {len(cells)} cells: {cells}."
            )
        lines.append(_line(cells))
    return "\n".join(lines) + "\n"


def number(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals; ``"n/a"`` for None (a run that has no such value)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def step_cell(row: dict[str, Any]) -> str:
    """A run's step: ``"4"`` when its ``status`` is ``"done"``, else ``"4 of 10 (running)"``."""
    return f"{row['step']}" + ("" if row["status"] == "done" else f" of {row['steps']} (running)")


def _line(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"
