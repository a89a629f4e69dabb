"""The one Markdown-table helper of the reports (evaluation here, the studies' documents too)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["fmt", "table"]


def fmt(x: float | None, *, digits: int = 3) -> str:
    """A figure for a table: ``digits`` decimals, ``n/a`` for None or NaN."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence[object]], *, align: Sequence[str] | None = None) -> list[str]:
    """Lines of a Markdown table.

    Parameters
    ----------
    header : sequence of str
    rows : iterable of sequences
        Cells, written with ``str``.
    align : sequence of {"l", "r"}, optional
        Per column; default left.
    """
    align = align or ["l"] * len(header)
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines
