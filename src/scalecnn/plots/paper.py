"""The paper's own aggregated results, shipped with the package (``scalecnn/resources``).

See ``resources/README.md`` for their source. Use them to put this project's
results beside the paper's, never to tune.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

PAPER_RUNS_SUMMARY = "paper_runs_summary.csv"
PAPER_GENERALIZATION_MEAN = "paper_generalization_mean.csv"


def _read(name: str) -> pd.DataFrame:
    ref = resources.files("scalecnn").joinpath("resources").joinpath(name)
    with resources.as_file(ref) as path:
        return pd.read_csv(path)


def load_paper_summary() -> pd.DataFrame:
    """One row per (data, model, evaluation): ``runs, lr, test_acc_mean, test_acc_median,
    test_acc_std, test_acc_q25, test_acc_q75, best_val_acc_median,
    train_time_s_per_epoch_mean`` (accuracies in percent, time in seconds)."""
    return _read(PAPER_RUNS_SUMMARY)


def load_paper_generalization() -> pd.DataFrame:
    """One row per (data, model, evaluation): ``runs`` and the mean test accuracy in
    percent at each object size ``s17 … s64``."""
    return _read(PAPER_GENERALIZATION_MEAN)
