"""Tests of scalecnn.plots on small synthetic tables (no training, no data files)."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.image import AxesImage

from scalecnn import plots
from scalecnn.plots import style
from scalecnn.plots.common import SIZE_COLUMNS
from scalecnn.plots.tables import latex_note
from scalecnn.study import PAPER_MODELS

MODELS = ["standard", "pixel_pool", "my_model"]  # my_model: a user-registered model
DATASETS = ["emoji", "mnist"]
SEEDS = [1, 2, 3]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for data in DATASETS:
        for mi, model in enumerate(MODELS):
            for evaluation in (1, 2, 3, 4):
                for seed in SEEDS:
                    rows.append(
                        {
                            "data": data,
                            "model": model,
                            "evaluation": evaluation,
                            "lr": 0.001,
                            "seed": seed,
                            "kernel_size": 7,
                            "interpolation": "bicubic",
                            "status": "ok",
                            "best_val_acc": 90.0,
                            "test_acc": 40.0 + 10 * mi + 5 * evaluation + rng.normal(0, 2),
                            "test_loss": 1.0,
                            "epochs": 20,
                            "best_epoch": 10,
                            "train_time_last_epoch": 1.0 + mi + seed / 10,
                            "train_time_mean": 1.0,
                        }
                    )
    frame = pd.DataFrame(rows)
    # one diverged run: emoji / pixel_pool / Mid2Rest / seed 4, NaN accuracy, huge time
    bad = frame.iloc[[0]].copy()
    bad[["data", "model", "evaluation", "seed", "status"]] = [
        "emoji",
        "pixel_pool",
        2,
        4,
        "nonfinite",
    ]
    bad["test_acc"] = np.nan
    bad["train_time_last_epoch"] = 1000.0
    return pd.concat([frame, bad], ignore_index=True)


@pytest.fixture(scope="module")
def generalization(runs) -> pd.DataFrame:
    sizes = np.arange(17, 65)
    rows = []
    for r in runs.itertuples():
        acc = np.clip(0.3 + 0.01 * (sizes - 17) * (1 + MODELS.index(r.model)) / 3, 0, 1)
        if r.status != "ok":
            acc = np.full(sizes.shape, np.nan)
        rows.append(
            {
                "model": r.model,
                "data": r.data,
                "eval": r.evaluation,
                "lr": r.lr,
                "seed": r.seed,
                **dict(zip(SIZE_COLUMNS, acc, strict=True)),
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def equivariance(runs) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    part = runs[runs["model"].isin(["standard", "pixel_pool", "my_model"])]
    return pd.DataFrame(
        {
            "data": part["data"],
            "model": part["model"],
            "eval": part["evaluation"],
            "lr": part["lr"],
            "seed": part["seed"],
            "test_acc": part["test_acc"],
            "stage1_error": rng.uniform(0.01, 1.0, len(part)),
            "stage2_error": rng.uniform(0.01, 1.0, len(part)),
        }
    )


@pytest.fixture(scope="module")
def paper_summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "data": ["emoji", "emoji", "mnist"],
            "model": ["standard", "pixel_pool", "standard"],
            "evaluation": [2, 2, 4],
            "runs": [50, 50, 25],
            "lr": [0.001] * 3,
            "test_acc_mean": [39.1, 76.6, 99.0],
        }
    )


def _sizes_and_labels(n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Object size and label of each image ``(48·n_classes,)``: sizes 17…64, each once per class."""
    return np.repeat(np.arange(17, 65), n_classes), np.tile(np.arange(n_classes), 48)


def _indices(pool: np.ndarray, sizes: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays of an indices file with ``pool`` ``(N, ...)`` as both layers' indices."""
    return {
        "pool1": pool,
        "pool2": pool,
        "sizes": sizes,
        "labels": labels,
        "kernel_size": np.array(7),
    }


def _slice_indices(n_classes=3, n_channels=32, n_scales=4):
    sizes, labels = _sizes_and_labels(n_classes)
    rng = np.random.default_rng(2)
    pool = rng.integers(0, n_scales, size=(sizes.size, n_channels)).astype(np.uint8)
    pool[:, 0] = np.clip((sizes - 17) // 12, 0, n_scales - 1)  # channel 0: perfect growth
    pool[:, 1] = 0  # channel 1: constant, r undefined
    return _indices(pool, sizes, labels)


def _pixel_indices(n_classes=2, n_channels=8, hw=6):
    sizes, labels = _sizes_and_labels(n_classes)
    rng = np.random.default_rng(3)
    pool = rng.integers(0, 4, size=(sizes.size, n_channels, hw, hw)).astype(np.uint8)
    return _indices(pool, sizes, labels)


def _assert_saved(fig, tmp_path, name):
    paths = plots.save_figure_formats(fig, tmp_path / name)
    assert sorted(p.suffix for p in paths) == [".pdf", ".png"]
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000, p
    assert paths[0].read_bytes()[:4] == b"%PDF"
    assert paths[1].read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".*.tmp*")), "temporary files left behind"


def _note(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts)


def _data_axes(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


# --------------------------------------------------------------------------- style
def test_style_order_colours_and_fallback():
    assert style.model_order(["riesz", "disco", "zeta", "standard", "alpha", "gaussder"]) == [
        "standard",
        "disco",
        "gaussder",
        "riesz",
        "alpha",
        "zeta",
    ]
    assert len(set(style.MODEL_COLORS.values())) == 13  # eleven + gaussder + riesz, distinct
    c = style.model_color("my_model")
    assert c == style.fallback_color("my_model") and c.startswith("#") and len(c) == 7
    assert c not in style.MODEL_COLORS.values()
    assert style.eval_label(2) == "2 Mid2Rest"
    assert style.data_order(["aerial", "emoji", "x"]) == ["emoji", "aerial", "x"]


def test_save_figure_formats_stem_with_dot(tmp_path):
    fig = matplotlib.figure.Figure()
    fig.subplots().plot([0, 1])
    paths = plots.save_figure_formats(fig, tmp_path / "fig_lr0.01.pdf")
    assert [p.name for p in paths] == ["fig_lr0.01.pdf", "fig_lr0.01.png"]


# --------------------------------------------------------------------------- accuracy
def test_fig4(runs, tmp_path):
    fig = plots.plot_accuracy_summary(runs)
    axes = _data_axes(fig)
    assert len(axes) == 2
    for ax in axes:
        # standard: one dotted line per dataset; markers: filled + hollow per dataset
        dotted = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]
        assert len(dotted) == len(DATASETS)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["Pixel pool", "my_model"]
        assert sum(len(c.get_offsets()) for c in ax.collections) == 2 * len(DATASETS)
    assert "1 excluded" in _note(fig) and "emoji/pixel_pool/Mid2Rest: 1" in _note(fig)
    _assert_saved(fig, tmp_path, "fig4")


def test_fig4_mean_excludes_nonfinite(runs):
    fig = plots.plot_accuracy_summary(runs)
    ax = _data_axes(fig)[0]  # Mid2Rest means
    ok = runs[(runs["status"] == "ok") & (runs["evaluation"] == 2)]
    expected = ok[(ok["data"] == "emoji") & (ok["model"] == "standard")]["test_acc"].mean()
    ys = [ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_linestyle() == ":"]
    assert any(np.isclose(y, expected) for y in ys)


def test_suppl_fig1(runs, tmp_path):
    fig = plots.plot_accuracy_boxes(runs)
    axes = _data_axes(fig)
    assert len(axes) == len(DATASETS) * 4
    for ax in axes:
        pts = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert sum(len(c.get_offsets()) for c in pts) == len(MODELS) * len(SEEDS)
    _assert_saved(fig, tmp_path, "suppl1")


def test_suppl_fig1_only_present_rows_cols(runs):
    part = runs[(runs["data"] == "mnist") & runs["evaluation"].isin([1, 3])]
    fig = plots.plot_accuracy_boxes(part)
    assert len(_data_axes(fig)) == 2


# --------------------------------------------------------------------------- generalization
def test_fig5(generalization, tmp_path):
    fig = plots.plot_generalization(generalization, data="mnist")
    axes = _data_axes(fig)
    assert len(axes) == 3
    for ax in axes:
        assert len(ax.get_lines()) == len(MODELS)
        assert len(ax.patches) == 1  # training sizes shaded
    line = axes[1].get_lines()[0]  # standard, Mid2Rest
    expected = (
        100
        * generalization.query("data == 'mnist' and model == 'standard' and eval == 2")[
            SIZE_COLUMNS
        ]
        .mean()
        .to_numpy()
    )
    np.testing.assert_allclose(line.get_ydata(), expected)
    _assert_saved(fig, tmp_path, "fig5")


def test_fig5_excluded_counted_with_runs_status(generalization, runs):
    gen = generalization.copy()
    # the diverged run's row has finite values here: status must come from runs=
    gen.loc[gen[SIZE_COLUMNS[0]].isna(), SIZE_COLUMNS] = 0.0
    fig = plots.plot_generalization(gen, data="emoji", runs=runs)
    assert "1 excluded" in _note(fig)
    line = _data_axes(fig)[1].get_lines()[1]  # pixel_pool, Mid2Rest
    ok = generalization.query("data == 'emoji' and model == 'pixel_pool' and eval == 2")
    np.testing.assert_allclose(line.get_ydata(), 100 * ok[SIZE_COLUMNS].mean().to_numpy())


def test_suppl_fig2(generalization, tmp_path):
    fig = plots.plot_generalization_grid(generalization)
    axes = _data_axes(fig)
    assert len(axes) == len(DATASETS) * 4
    assert all(len(ax.get_lines()) == len(MODELS) for ax in axes)
    _assert_saved(fig, tmp_path, "suppl2")


def test_generalization_means_counts(generalization):
    means = plots.generalization_means(generalization)
    row = means.query("data == 'emoji' and model == 'pixel_pool' and evaluation == 2").iloc[0]
    assert (row["n_ok"], row["n_excluded"]) == (3, 1)


def test_selection_keeps_chosen_lr(generalization):
    other = generalization.copy()
    other["lr"] = 0.01
    other[SIZE_COLUMNS] = 1.0
    both = pd.concat([generalization, other], ignore_index=True)
    with pytest.warns(UserWarning, match="several learning rates"):
        plots.generalization_means(both)
    sel = pd.DataFrame(
        [
            {"data": d, "model": m, "evaluation": e, "chosen_lr": 0.001}
            for d in DATASETS
            for m in MODELS
            for e in (1, 2, 3, 4)
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.plot_generalization(both, data="mnist", evaluations=[2], selection=sel)
    expected = (
        100
        * generalization.query("data == 'mnist' and model == 'standard' and eval == 2")[
            SIZE_COLUMNS
        ]
        .mean()
        .to_numpy()
    )
    np.testing.assert_allclose(_data_axes(fig)[0].get_lines()[0].get_ydata(), expected)


# --------------------------------------------------------------------------- equivariance
def test_fig6(equivariance, tmp_path):
    fig = plots.plot_equivariance(equivariance)
    (ax,) = _data_axes(fig)
    assert len(ax.collections) == len(MODELS)
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(MODELS) * len(SEEDS)
    assert ax.get_xscale() == "log"
    assert "1 excluded" in _note(fig)
    _assert_saved(fig, tmp_path, "fig6")


def _visible_xtick_labels(ax):
    """The x tick labels a reader sees: non-empty, inside the view, major and minor."""
    lo, hi = ax.get_xlim()
    ticks = ax.xaxis.get_major_ticks() + ax.xaxis.get_minor_ticks()
    return [
        t.label1
        for t in ticks
        if t.label1.get_visible() and t.label1.get_text() and lo <= t.get_loc() <= hi
    ]


@pytest.mark.parametrize("lo,hi", [(1.15, 1.9), (0.3, 2.9), (0.021, 0.024)])
def test_fig6_log_axis_within_a_decade_has_few_readable_labels(equivariance, lo, hi):
    rng = np.random.default_rng(4)
    narrow = equivariance.assign(stage2_error=rng.uniform(lo, hi, len(equivariance)))
    fig = plots.plot_equivariance(narrow)
    FigureCanvasAgg(fig).draw()  # a Figure made without pyplot has a canvas that draws nothing
    (ax,) = _data_axes(fig)
    assert ax.get_xscale() == "log"
    labels = _visible_xtick_labels(ax)
    texts = [t.get_text() for t in labels]
    assert 2 <= len(labels) <= 6, texts
    assert len(set(texts)) == len(texts), texts
    boxes = sorted((t.get_window_extent() for t in labels), key=lambda b: b.x0)
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), texts
    assert all("times" not in t for t in texts)  # plain numbers, no 1.2 × 10⁰


def test_suppl_fig3(equivariance, tmp_path):
    fig = plots.plot_equivariance_grid(equivariance)
    axes = _data_axes(fig)
    assert len(axes) == len(DATASETS) * 4  # trafficsign absent: only rows present
    assert all(len(ax.collections) == len(MODELS) for ax in axes)
    _assert_saved(fig, tmp_path, "suppl3")


# --------------------------------------------------------------------------- indices
def test_fig7(tmp_path):
    ind = _slice_indices()
    fig = plots.plot_slice_indices(ind, label=2)
    (ax,) = _data_axes(fig)
    assert len(ax.collections) == 32
    # rows sorted by r ascending: channel 1 (r undefined) at the bottom, channel 0 (r~1) on top
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("2 ") and "n/a" in labels[0]
    assert labels[-1].startswith("1 ")
    sizes, kernels, r = plots.slice_index_correlation(ind, label=2)
    assert sizes.tolist() == list(range(17, 65)) and kernels.shape == (48, 32)
    assert r[0] > 0.9 and np.isnan(r[1])
    assert set(np.unique(kernels[:, 0])) <= {7, 9, 11, 13}
    _assert_saved(fig, tmp_path, "fig7")


def test_suppl_fig4(tmp_path):
    fig = plots.plot_pixel_indices(_pixel_indices(), label=1)
    images = [ax for ax in fig.axes if any(isinstance(a, AxesImage) for a in ax.get_images())]
    assert len(images) == 8 * 4
    _assert_saved(fig, tmp_path, "suppl4")


def test_indices_wrong_kind_or_label():
    with pytest.raises(ValueError, match="plot_pixel_indices"):
        plots.plot_slice_indices(_pixel_indices())
    with pytest.raises(ValueError, match="plot_slice_indices"):
        plots.plot_pixel_indices(_slice_indices())
    with pytest.raises(ValueError, match="label 33"):
        plots.plot_slice_indices(_slice_indices())


# --------------------------------------------------------------------------- tables
def test_table2_values(runs):
    summary = plots.training_time_summary(runs)
    wide = plots.table2(summary)
    assert list(wide.index) == ["standard", "pixel_pool", "my_model"]
    assert list(wide.columns) == ["emoji", "mnist"]
    # hand-computed: 1 + mi + mean(seed / 10) over ok seeds 1..3 = 1 + mi + 0.2
    for mi, model in enumerate(MODELS):
        for data in DATASETS:
            assert wide.loc[model, data] == pytest.approx(1.0 + mi + 0.2)
    row = summary.query("data == 'emoji' and model == 'pixel_pool'").iloc[0]
    assert (row["n_ok"], row["n_excluded"]) == (3, 1)  # the 1000 s run is left out
    assert summary.shape == (6, 5)
    tex = plots.table2_latex(summary)
    assert r"\toprule" in tex and r"\bottomrule" in tex and "Pixel pool" in tex
    assert "2.20$^\\dagger$" in tex and "my\\_model" in tex
    assert "Model & Emoji & MNIST \\\\\n\\midrule" in tex
    assert "\\midrule\nRuns (ok / excluded) & 9 / 1 & 9 / 0 \\\\\n\\bottomrule" in tex
    assert tex.startswith("\\begin{table}[t]") and tex.endswith("\\end{table}\n")
    assert "some runs excluded" in tex
    note = latex_note("Table 2 not available", "all runs of data_x excluded: 100% & more")
    assert note.startswith("% Table 2 not available\n")
    assert r"data\_x excluded: 100\% \& more" in note


# --------------------------------------------------------------------------- compare
def test_compare_table_numbers(runs, paper_summary):
    table = plots.compare_table(runs, paper_summary)
    assert len(table) == len(DATASETS) * len(MODELS) * 4
    row = table.query("data == 'emoji' and model == 'pixel_pool' and evaluation == 2").iloc[0]
    ok = runs.query(
        "data == 'emoji' and model == 'pixel_pool' and evaluation == 2 and status == 'ok'"
    )["test_acc"]
    assert row["ours_mean"] == pytest.approx(ok.mean())
    assert row["diff"] == pytest.approx(ok.mean() - 76.6)
    assert (row["n_ok"], row["n_excluded"], row["paper_runs"]) == (3, 1, 50)
    user = table.query("model == 'my_model'")
    assert user["paper_mean"].isna().all() and user["diff"].isna().all()
    md = plots.compare_markdown(table)
    assert md.count("\n|") == len(table) + 2  # header, rule, one line per row
    assert f"{ok.mean() - 76.6:+.1f}" in md
    assert md.startswith("Test accuracy")


def test_compare_default_paper_and_figures(runs, generalization, tmp_path):
    table = plots.compare_table(runs)  # shipped paper summary
    assert table["paper_mean"].notna().sum() == len(DATASETS) * 2 * 4  # my_model: none
    assert table.query("data == 'emoji' and model == 'standard' and evaluation == 2")[
        "paper_mean"
    ].iloc[0] == pytest.approx(39.1, abs=0.05)
    fig = plots.plot_compare_scatter(table)
    (ax,) = _data_axes(fig)
    assert len(ax.collections) == len(DATASETS)
    _assert_saved(fig, tmp_path, "compare_scatter")
    fig = plots.plot_compare_generalization(generalization)
    axes = _data_axes(fig)
    # one panel per model of each (dataset, evaluation)
    assert len(axes) == len(DATASETS) * 4 * len(MODELS)
    titles = [ax.get_title() for ax in axes]
    assert titles.count(style.model_label("my_model")) == len(DATASETS) * 4
    # ours, plus the paper's dashed curve for the 2 paper models
    assert sorted(len(ax.get_lines()) for ax in axes) == [1] * 8 + [2] * 16
    _assert_saved(fig, tmp_path, "compare_generalization")


def _study_generalization(models, seeds=(1, 2, 3)) -> pd.DataFrame:
    """Emoji Mid2Rest curves of ``models``: seed s lies 0.01 s above the seeds' base curve."""
    sizes = np.arange(17, 65)
    base = 0.6 - 0.01 * np.abs(sizes - 40)
    return pd.DataFrame(
        [
            {"model": m, "data": "emoji", "eval": 2, "lr": 0.001, "seed": s}
            | dict(zip(SIZE_COLUMNS, base + 0.01 * s, strict=True))
            for m in models
            for s in seeds
        ]
    )


def test_compare_generalization_small_multiples_one_panel_per_model():
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Rectangle

    from scalecnn.study import STUDY_MODELS

    fig = plots.plot_compare_generalization(_study_generalization(STUDY_MODELS))
    axes = [ax for ax in _data_axes(fig) if ax.has_data()]
    assert len(axes) == len(fig.axes) == len(STUDY_MODELS) == 13
    assert [ax.get_title() for ax in axes] == [style.model_label(m) for m in STUDY_MODELS]
    # a grid of five columns: three rows
    assert len({round(ax.get_position().x0, 3) for ax in axes}) == 5
    assert len({round(ax.get_position().y0, 3) for ax in axes}) == 3
    for ax in axes:
        assert ax.get_shared_x_axes().joined(axes[0], ax)
        assert ax.get_shared_y_axes().joined(axes[0], ax)
        # the training sizes of Mid2Rest (33-48) shaded
        (span,) = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert (span.get_x(), span.get_x() + span.get_width()) == (32.5, 48.5)
        # the seeds' band: from seed 1 (base + 0.01) to seed 3 (base + 0.03), in percent
        (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
        y = band.get_paths()[0].vertices[:, 1]
        assert y.min() == pytest.approx(100 * (0.6 - 0.01 * 24 + 0.01))
        assert y.max() == pytest.approx(100 * (0.6 + 0.03))
    texts = {ax.get_title(): " ".join(t.get_text() for t in ax.texts) for ax in axes}
    for model in STUDY_MODELS:
        no_curve = "no paper curve" in texts[style.model_label(model)]
        assert no_curve == (model in ("gaussder", "riesz")), model
        lines = axes[STUDY_MODELS.index(model)].get_lines()
        assert len(lines) == (1 if no_curve else 2)  # our mean (+ the paper's, dashed)
        assert "n=3" in texts[style.model_label(model)]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "ours: min–max over the seeds" in legend and "training sizes" in legend


def test_paper_resources():
    summary = plots.load_paper_summary()
    gen = plots.load_paper_generalization()
    assert len(summary) == len(gen) == 4 * 11 * 4
    assert set(summary["model"]) == set(PAPER_MODELS)
    assert {f"s{s}" for s in range(17, 65)} <= set(gen.columns)


# --------------------------------------------------------------------------- empty input
@pytest.mark.parametrize(
    ("func", "table", "kwargs", "match"),
    [
        (plots.plot_accuracy_summary, "runs", {}, "Fig. 4"),
        (plots.plot_accuracy_boxes, "runs", {"datasets": ["aerial"]}, "aerial"),
        (plots.plot_generalization, "generalization", {"data": "aerial"}, "aerial"),
        (plots.plot_generalization_grid, "generalization", {"evaluations": [5]}, "evaluation"),
        (plots.plot_equivariance, "equivariance", {"evaluation": 7}, "evaluation=7"),
        (
            plots.plot_equivariance_grid,
            "equivariance",
            {"datasets": ["trafficsign"]},
            "trafficsign",
        ),
        (plots.training_time_summary, "runs", {"evaluation": 9}, "Table 2"),
        (plots.plot_compare_generalization, "generalization", {"datasets": ["aerial"]}, "aerial"),
    ],
)
def test_missing_subset_raises(request, func, table, kwargs, match):
    frame = request.getfixturevalue(table)
    with pytest.raises(ValueError, match=match):
        func(frame.iloc[0:0] if not kwargs else frame, **kwargs)


def test_all_runs_excluded_raises(runs):
    bad = runs.assign(status="nonfinite")
    with pytest.raises(ValueError, match="excluded"):
        plots.plot_accuracy_boxes(bad)
    with pytest.raises(ValueError, match="empty"):
        plots.compare_table(runs.iloc[0:0])
    with pytest.raises(ValueError, match="missing column"):
        plots.plot_accuracy_summary(runs.drop(columns=["test_acc"]))
