"""Small multiples: one panel per model in a wrapped grid, every panel on the same axes.

Why: a dozen models' curves in one panel hide each other; one panel per model with shared
x and y axes can be read one by one and still compared at a glance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

MAX_COLUMNS = 5
"""Panels per row of a model grid (thirteen models: three rows of five)."""


def grid_columns(n_panels: int, max_columns: int = MAX_COLUMNS) -> int:
    """Columns of a grid of ``n_panels`` panels: all in one row up to ``max_columns``."""
    return max(1, min(int(n_panels), int(max_columns)))


def grid_rows(n_panels: int, columns: int) -> int:
    """Rows of a grid of ``n_panels`` panels in ``columns`` columns."""
    return max(1, math.ceil(int(n_panels) / int(columns)))


def model_panels(
    fig: Figure | SubFigure,
    models: Sequence[str],
    columns: int,
    share: Axes | None = None,
) -> dict[str, Axes]:
    """One axes per model of ``models``, row by row in ``columns`` columns of ``fig``.

    Every panel shares its x and y axis with ``share`` (the first panel when None), so
    that grids in several subfigures share them too. Tick labels are kept where they can
    be read: the y labels in the first column, the x labels on the lowest panel of each
    column (also above an empty cell of the last row).
    """
    rows = grid_rows(len(models), columns)
    spec = fig.add_gridspec(rows, columns)
    panels: dict[str, Axes] = {}
    for i, model in enumerate(models):
        row, col = divmod(i, columns)
        ax = fig.add_subplot(spec[row, col], sharex=share, sharey=share)
        share = share or ax
        if i + columns < len(models):
            ax.tick_params(labelbottom=False)
        if col > 0:
            ax.tick_params(labelleft=False)
        panels[model] = ax
    return panels
