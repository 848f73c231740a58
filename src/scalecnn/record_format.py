"""Number and table formatting shared by the reproduction record's Markdown modules.

One place for how the record writes durations, accuracies, p-values and pipe tables,
so that every section of ``docs/reproduction.md`` reads alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def fmt_duration(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 05 s``, ``12.3 s``; ``–`` for NaN."""
    if not np.isfinite(seconds):
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_num(value: Any, decimals: int = 2) -> str:
    """``value`` with ``decimals`` decimals; ``–`` for None or NaN."""
    if value is None or pd.isna(value):
        return "–"
    return f"{float(value):.{decimals}f}"


def fmt_p(value: Any) -> str:
    """A p-value: two significant digits below 0.001 (``2.6e-05``), else three decimals;
    ``–`` for None or NaN."""
    if value is None or pd.isna(value):
        return "–"
    return f"{float(value):.2g}" if float(value) < 0.001 else f"{float(value):.3f}"


def fmt_diff(value: Any) -> str:
    """A signed difference in percentage points (``+1.23``); ``–`` for None or NaN."""
    if value is None or pd.isna(value):
        return "–"
    return f"{float(value):+.2f}"


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]
) -> str:
    """A Markdown pipe table (``right``: right-align that column)."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
