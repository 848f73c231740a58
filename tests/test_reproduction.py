"""The reproduction verdict: Welch test and Spearman correlation checked by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import stats

from scalecnn.newer_models import against_best_paper_model, against_published_runs
from scalecnn.plots import style
from scalecnn.plots.reproduction import plot_reproduction
from scalecnn.reproduction import (
    NOT_RECORDED,
    RUN_COLUMNS,
    VERDICT_COLUMNS,
    rank_correlation,
    reproduction_runs,
    verdict_table,
    welch_p_value,
    write_verdict,
)


def _runs(rows):
    """A runs.csv-like frame from (model, seed, test_acc, status) tuples (data emoji, eval 2)."""
    return pd.DataFrame(
        [
            {
                "data": "emoji",
                "model": m,
                "evaluation": 2,
                "lr": 0.001,
                "seed": s,
                "status": status,
                "test_acc": acc,
                "epochs": 10 + s,
                "best_epoch": s,
                "train_time_mean": 2.0,
            }
            for m, s, acc, status in rows
        ]
    )


PAPER = pd.DataFrame(
    {
        "data": ["emoji", "emoji", "emoji", "mnist"],
        "model": ["standard", "pixel_pool", "xu", "standard"],
        "evaluation": [2, 2, 2, 2],
        "runs": [4, 50, 50, 25],
        "lr": [0.001] * 4,
        "test_acc_mean": [5.0, 76.0, 40.0, 99.0],
        "test_acc_std": [2.0, 4.0, 4.0, 1.0],
    }
)


def test_welch_t_and_df_by_hand():
    # ours 1, 2, 3: mean 2, s^2 = 1, n 3; paper mean 5, s 2, n 4
    # se^2 = 1/3 + 4/4 = 4/3; t = -3 / sqrt(4/3) = -2.598
    # df = (4/3)^2 / ((1/3)^2 / 2 + 1^2 / 3) = (16/9) / (7/18) = 32/7
    t = -3 / math.sqrt(4 / 3)
    df = 32 / 7
    expected = 2 * stats.t.sf(abs(t), df)
    assert welch_p_value(2.0, 1.0, 3, 5.0, 2.0, 4) == pytest.approx(expected, rel=1e-12)
    assert 0.04 < expected < 0.06  # t = -2.6 on 4.6 degrees of freedom


def test_verdict_table_columns_statistics_and_verdicts():
    runs = _runs(
        [
            ("standard", 1, 1.0, "ok"),
            ("standard", 2, 2.0, "ok"),
            ("standard", 3, 3.0, "ok"),
            ("pixel_pool", 1, 10.0, "ok"),
            ("pixel_pool", 2, 12.0, "ok"),
            ("xu", 1, 41.0, "ok"),
            ("xu", 2, 5.0, "nonfinite"),  # excluded: one ok seed left
            ("my_net", 1, 50.0, "ok"),
            ("my_net", 2, 52.0, "ok"),
        ]
    )
    table = verdict_table(runs, "emoji", 2, PAPER)
    assert list(table.columns) == VERDICT_COLUMNS
    assert table["model"].tolist() == ["standard", "pixel_pool", "xu", "my_net"]  # paper order
    std = table.set_index("model")
    assert std.at["standard", "seeds"] == 3
    assert std.at["standard", "ours_mean"] == pytest.approx(2.0)
    assert std.at["standard", "ours_std"] == pytest.approx(1.0)
    assert std.at["standard", "diff"] == pytest.approx(-3.0)
    assert std.at["standard", "paper_runs"] == 4
    # p = 0.05 (by hand above) >= 0.01
    assert std.at["standard", "p_value"] == pytest.approx(
        2 * stats.t.sf(3 / math.sqrt(4 / 3), 32 / 7)
    )
    assert std.at["standard", "verdict"] == "consistent"
    # pixel_pool: mean 11, s = sqrt(2); far below 76 -> differs
    assert std.at["pixel_pool", "ours_std"] == pytest.approx(math.sqrt(2))
    assert std.at["pixel_pool", "p_value"] < 0.01
    assert std.at["pixel_pool", "verdict"] == "differs"
    # xu: one ok seed -> std undefined, no test
    assert std.at["xu", "seeds"] == 1
    assert std.at["xu", "ours_mean"] == 41.0
    assert np.isnan(std.at["xu", "ours_std"]) and np.isnan(std.at["xu", "p_value"])
    assert std.at["xu", "verdict"] == "insufficient"
    # a model the paper lacks
    assert std.at["my_net", "verdict"] == "not in the paper"
    assert pd.isna(std.at["my_net", "paper_runs"])


def test_spearman_on_a_known_ranking():
    table = pd.DataFrame(
        {
            "ours_mean": [10.0, 20.0, 30.0, 40.0, 50.0],
            "paper_mean": [1.0, 3.0, 2.0, 4.0, np.nan],  # the last model is left out
        }
    )
    # ranks 1 2 3 4 vs 1 3 2 4: sum d^2 = 2, rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8
    corr = rank_correlation(table)
    assert corr.n == 4
    assert corr.rho == pytest.approx(0.8)
    assert np.isnan(rank_correlation(table.iloc[:1]).rho)


def _table(rows):
    cols = ["model", "seeds", "ours_mean", "ours_std", "verdict"]
    return pd.DataFrame(rows, columns=cols)


def test_new_model_against_the_best_paper_model_by_hand():
    table = _table(
        [
            ("standard", 3, 40.0, 2.0, "consistent"),
            ("pixel_pool", 3, 80.0, 1.0, "consistent"),
            ("ensemble", 3, 70.0, 5.0, "differs"),
            ("gaussder", 3, 90.0, 1.0, "not in the paper"),
            ("riesz", 3, 79.0, 1.0, "not in the paper"),
        ]
    )
    c = against_best_paper_model(table, "gaussder")
    # the best paper model by our mean is pixel_pool (80), not ensemble or the other new one
    assert (c.best, c.best_mean, c.diff) == ("pixel_pool", 80.0, 10.0)
    # Welch with equal std 1 and n 3 on both sides: t = 10 / sqrt(2/3), df = 4
    t = 10.0 / math.sqrt(2.0 / 3.0)
    assert c.p_value == pytest.approx(2 * stats.t.sf(t, 4))
    assert c.answer() == "better"
    r = against_best_paper_model(table, "riesz")
    # t = 1 / sqrt(2/3) = 1.22, df 4: p = 0.29
    assert r.diff == -1.0 and r.p_value == pytest.approx(2 * stats.t.sf(1 / math.sqrt(2 / 3), 4))
    assert r.answer() == "not distinguishable"
    worse = against_best_paper_model(table.replace({90.0: 60.0}), "gaussder")
    assert worse.answer() == "worse"
    # the best paper model with one ok seed: no standard deviation, no test
    single = table.assign(seeds=[3, 1, 3, 3, 3], ours_std=[2.0, np.nan, 5.0, 1.0, 1.0])
    assert against_best_paper_model(single, "gaussder").answer() == "not testable"
    assert against_best_paper_model(table, "missing") is None
    assert against_best_paper_model(table.iloc[3:], "gaussder") is None  # no paper model


def test_reproduction_runs_table():
    runs = _runs([("xu", 2, 40.0, "ok"), ("standard", 1, 30.0, "ok"), ("xu", 1, 41.0, "ok")])
    table = reproduction_runs(runs, "emoji", 2)
    assert list(table.columns) == RUN_COLUMNS
    assert table[["model", "seed"]].values.tolist() == [["standard", 1], ["xu", 1], ["xu", 2]]
    # train_seconds = mean epoch time 2 s × (10 + seed) epochs
    assert table["train_seconds"].tolist() == [22.0, 22.0, 24.0]
    assert table["commit"].tolist() == [NOT_RECORDED] * 3  # metrics.json without the key
    assert table["resumes"].isna().all()  # runs older than the key cannot tell
    resumed = reproduction_runs(runs.assign(resumes=[1, None, 0]))  # xu 2, standard 1, xu 1
    assert resumed["resumes"].tolist() == [pd.NA, 0, 1]
    assert str(resumed["resumes"].dtype) == "Int64"
    dated = runs.assign(commit=["abc", None, "def"])  # xu 2, standard 1, xu 1
    assert reproduction_runs(dated)["commit"].tolist() == [NOT_RECORDED, "def", "abc"]
    mixed = pd.concat([runs, runs.assign(lr=0.01, seed=9)])
    with pytest.raises(ValueError, match="several"):
        reproduction_runs(mixed, "emoji", 2)
    with pytest.raises(ValueError, match="no runs"):
        reproduction_runs(runs, "mnist", 2)


def test_figure_marks_the_models_that_differ():
    runs = _runs(
        [("standard", s, a, "ok") for s, a in ((1, 1.0), (2, 2.0), (3, 3.0))]
        + [("pixel_pool", s, a, "ok") for s, a in ((1, 10.0), (2, 12.0))]
    )
    table = verdict_table(runs, "emoji", 2, PAPER)
    fig = plot_reproduction(
        table, reproduction_runs(runs), data="emoji", evaluation=2, note="a note"
    )
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [style.model_label("standard"), style.model_label("pixel_pool") + " *"]
    assert len(ax.containers) == 2  # one paper error bar per model
    texts = " ".join(t.get_text() for t in fig.texts)
    assert texts.startswith("A note.\nOk seeds per model: 2 to 3.")
    with pytest.raises(ValueError, match="empty"):
        plot_reproduction(table.iloc[:0], runs, data="emoji", evaluation=2)


def _metrics_json(path, model, seed, acc, **extra):
    import json

    path.mkdir(parents=True)
    params = {"data_name": "emoji", "model": model, "evaluation": 2, "lr": 0.001, "seed": seed}
    params |= {"kernel_size": 7, "interpolation": "bicubic"}
    metrics = {"params": params, "status": "ok", "test_acc": acc, "epochs": 10}
    metrics |= {"best_epoch": 5, "train_time_mean": 1.0} | extra
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path / "metrics.json"


def test_write_verdict_carries_how_often_each_run_resumed(tmp_path):
    files = [
        _metrics_json(tmp_path / "a", "standard", 1, 1.0, resumes=2, commit="abc"),
        _metrics_json(tmp_path / "b", "standard", 2, 2.0, resumes=0, commit="abc"),
        _metrics_json(tmp_path / "c", "standard", 3, 3.0),  # older: neither key
    ]
    table, runs = write_verdict(files, "emoji", 2, tmp_path / "v.csv", tmp_path / "r.csv", PAPER)
    assert runs["resumes"].tolist() == [2, 0, pd.NA]
    assert runs["commit"].tolist() == ["abc", "abc", NOT_RECORDED]
    written = pd.read_csv(tmp_path / "r.csv")
    assert list(written.columns) == RUN_COLUMNS
    assert written["resumes"].tolist()[:2] == [2, 0] and np.isnan(written["resumes"].iloc[2])
    # the verdict of a per-run table read back from its CSV is the same
    again = verdict_table(written, "emoji", 2, PAPER)
    pd.testing.assert_frame_equal(again, table)


PUBLISHED = pd.DataFrame(
    {
        "data": ["emoji", "emoji", "emoji", "mnist"],
        "model": ["disco", "pixel_pool", "standard", "standard"],  # not in the paper's order
        "evaluation": [2, 2, 2, 2],
        "runs": [40, 50, 50, 25],
        "lr": [0.001] * 4,
        "test_acc_mean": [73.5, 76.0, 40.0, 99.0],
        "test_acc_std": [3.5, 4.0, 4.0, 1.0],
    }
)


def test_newer_model_against_the_papers_published_runs_by_hand():
    table = _table(
        [
            ("standard", 3, 20.0, 2.0, "differs"),  # our run of a paper model: not used
            ("gaussder", 3, 74.0, 1.0, "not in the paper"),
            ("riesz", 1, 60.0, np.nan, "not in the paper"),
        ]
    )
    comp = against_published_runs(table, "gaussder", "emoji", 2, PUBLISHED)
    # every paper model of emoji Mid2Rest in the paper's order, none of mnist
    assert comp["paper_model"].tolist() == ["standard", "pixel_pool", "disco"]
    assert comp["diff"].tolist() == [34.0, -2.0, 0.5]
    assert comp["paper_runs"].tolist() == [50, 50, 40]
    for r in comp.itertuples():
        scipy_p = stats.ttest_ind_from_stats(
            74.0, 1.0, 3, r.paper_mean, r.paper_std, r.paper_runs, equal_var=False
        ).pvalue
        assert r.p_value == pytest.approx(scipy_p, rel=1e-12)
    # pixel_pool by hand: se^2 = 1/3 + 16/50; t = -2 / se;
    # df = se^4 / ((1/3)^2 / 2 + (16/50)^2 / 49) = 7.40
    se2 = 1 / 3 + 16 / 50
    df = se2**2 / ((1 / 3) ** 2 / 2 + (16 / 50) ** 2 / 49)
    p_pixel = 2 * stats.t.sf(2 / math.sqrt(se2), df)
    assert comp.at[1, "p_value"] == pytest.approx(p_pixel)
    assert 0.01 < p_pixel < 0.05  # t = -2.47 on 7.4 degrees of freedom
    assert comp["answer"].tolist() == ["better", "not distinguishable", "not distinguishable"]
    # at alpha 0.05 pixel_pool's published runs are better than gaussder
    loose = against_published_runs(table, "gaussder", "emoji", 2, PUBLISHED, alpha=0.05)
    assert loose.at[1, "answer"] == "worse"
    # one ok seed: no standard deviation, no test
    riesz = against_published_runs(table, "riesz", "emoji", 2, PUBLISHED)
    assert riesz["answer"].tolist() == ["not testable"] * 3
    assert riesz["p_value"].isna().all()
    assert against_published_runs(table, "missing", "emoji", 2, PUBLISHED).empty
    assert against_published_runs(table, "gaussder", "emoji", 3, PUBLISHED).empty
