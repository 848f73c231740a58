"""Figures and tables of the paper, one module per figure family.

Every function is pure: it takes pandas DataFrames (the tables of
``docs/formats.md``) or numpy arrays and returns a matplotlib ``Figure``
(or a DataFrame / text for tables); nothing is drawn on screen and no global
matplotlib state is changed. Save a figure with :func:`save_figure_formats`; the
workflow's writers of figures and tables from per-run files are in ``inputs``. None of
these modules needs torch.

==========================  ===============================================
module                      artefact
==========================  ===============================================
``accuracy``                Fig. 4, Suppl. Fig. 1
``generalization``          Fig. 5, Suppl. Fig. 2
``equivariance``            Fig. 6, Suppl. Fig. 3
``indices``                 Fig. 7, Suppl. Fig. 4
``tables``                  Table 2
``compare``                 comparison with the paper's published results
``reproduction``            the reproduction verdict per model (``scalecnn.reproduction``)
``paper``                   loaders of those results (``scalecnn/resources``)
``style``                   model order, names, colours; fonts
``inputs``                  the workflow's figures and tables from per-run files
==========================  ===============================================

Runs whose status is not ``ok`` are excluded from means but counted, and the
counts appear on every figure and table. Asking for a subset with no data
raises ``ValueError`` naming it.
"""

from scalecnn.plots.accuracy import plot_accuracy_boxes, plot_accuracy_summary
from scalecnn.plots.common import save_figure_formats
from scalecnn.plots.compare import (
    compare_markdown,
    compare_table,
    plot_compare_generalization,
    plot_compare_scatter,
)
from scalecnn.plots.equivariance import plot_equivariance, plot_equivariance_grid
from scalecnn.plots.generalization import (
    generalization_means,
    plot_generalization,
    plot_generalization_grid,
)
from scalecnn.plots.indices import plot_pixel_indices, plot_slice_indices, slice_index_correlation
from scalecnn.plots.paper import load_paper_generalization, load_paper_summary
from scalecnn.plots.style import apply_style
from scalecnn.plots.tables import table2, table2_latex, training_time_summary

__all__ = [
    "apply_style",
    "compare_markdown",
    "compare_table",
    "generalization_means",
    "load_paper_generalization",
    "load_paper_summary",
    "plot_accuracy_boxes",
    "plot_accuracy_summary",
    "plot_compare_generalization",
    "plot_compare_scatter",
    "plot_equivariance",
    "plot_equivariance_grid",
    "plot_generalization",
    "plot_generalization_grid",
    "plot_pixel_indices",
    "plot_slice_indices",
    "save_figure_formats",
    "slice_index_correlation",
    "table2",
    "table2_latex",
    "training_time_summary",
]
