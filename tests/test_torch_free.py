"""Every table and figure is built from existing run outputs without torch.

The rules of tables, figures and the verdict run in ``envs/plots.yaml``, which installs
neither PyTorch nor kornia. Here a fresh interpreter blocks every import of ``torch`` and
``kornia`` (a meta path finder that refuses them and records the attempt), fakes the
outputs of finished runs (``tests/fake_runs.py``) and builds the tables, figures, Table 2,
the comparison with the paper and a verdict from them as the workflow's scripts do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parent
BLOCKED = ("torch", "kornia")

BLOCKER = """
import importlib.abc
import sys

BLOCKED = set({blocked!r})
ATTEMPTS = []


class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            ATTEMPTS.append(name)
            raise ModuleNotFoundError(f"{{name!r}} is blocked by the test", name=name)
        return None


sys.meta_path.insert(0, NoTorch())
sys.modules.pop("torch", None)
"""

BUILD = """
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np

from fake_runs import fake_evaluations, fake_run, fake_selection
from scalecnn.aggregate import best_run, write_table
from scalecnn.plots import save_figure_formats
from scalecnn.plots.inputs import (
    compare_scatter_from_csv,
    figure_from_files,
    indices_figure,
    write_compare_files,
    write_table2_files,
)
from scalecnn.study import run_dir

root = Path(sys.argv[1])
res, out = root / "results", root / "out"
out.mkdir()
models = ("standard", "pixel_pool", "slice_pool", "kanazawa")
runs, records = [], []
for model in models:
    for evaluation in (2, 4):
        for seed in (1, 2):
            status = "nonfinite" if (model, evaluation, seed) == ("kanazawa", 4, 2) else "ok"
            run = fake_run(res, model, 0.001, seed, status=status, evaluation=evaluation)
            fake_evaluations(run, status)
            runs.append(run)
        records.append(fake_selection(res, model, 0.001, evaluation=evaluation))
metrics = [r / "metrics.json" for r in runs]
files = {
    "metrics": metrics,
    "selection": records,
    "generalization": [r / "generalization.csv" for r in runs],
    "equivariance": [r / "equivariance.npz" for r in runs],
}


def texts(fig):
    parts = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        parts += [ax.get_title(), *(t.get_text() for t in ax.texts)]
    return "\\n".join(parts)


def save(fig, stem):
    (path,) = save_figure_formats(fig, [out / f"{stem}.pdf"])
    assert path.stat().st_size > 1000, stem
    print("figure", stem, flush=True)


# the tables of rules/aggregate.smk
tables = {
    "runs": write_table("runs", metrics, out / "runs.csv"),
    "generalization": write_table("generalization", files["generalization"], out / "gen.csv"),
    "equivariance": write_table(
        "equivariance", list(zip(metrics, files["equivariance"])), out / "eq.csv"
    ),
    "selection": write_table("selection", records, out / "selection.csv"),
}
assert len(tables["runs"]) == len(tables["generalization"]) == len(runs)
assert len(tables["equivariance"]) == len(runs) and len(tables["selection"]) == len(records)
print("tables", flush=True)

# the figures of rules/figures.smk
for kind in ("fig4", "suppl_fig1", "suppl_fig2", "suppl_fig3", "compare_generalization"):
    fig = figure_from_files(kind, **files)
    assert "not drawn" not in texts(fig), kind
    save(fig, kind)
for kind in ("fig5", "fig6"):
    fig = figure_from_files(kind, data="emoji", **files)
    assert "not drawn" not in texts(fig), kind
    save(fig, kind)

# Fig. 7 and Suppl. Fig. 4 from the best run's pooling indices
best = best_run([m for m in metrics if "slice_pool/eval2" in str(m)])
assert best == res / run_dir("emoji", "slice_pool", 2, 0.001, 2), best
sizes = np.repeat(np.arange(17, 65), 36)
labels = np.tile(np.arange(36), 48)
rng = np.random.default_rng(0)
pools = {
    "fig7": rng.integers(0, 4, (sizes.size, 32)).astype(np.uint8),
    "suppl_fig4": rng.integers(0, 4, (sizes.size, 8, 6, 6)).astype(np.uint8),
}
for kind, pool in pools.items():
    path = out / f"{kind}_best.npz"
    np.savez(path, pool1=pool, pool2=pool, sizes=sizes, labels=labels,
             kernel_size=np.array(7), run=np.array(str(best)))
    fig = indices_figure(kind, path)
    assert "not drawn" not in texts(fig), kind
    save(fig, kind)

# Table 2 and the comparison with the paper
summary = write_table2_files(metrics, out / "t2.csv", out / "t2.tex", selection=records)
assert summary is not None and "Pixel pool" in (out / "t2.tex").read_text()
table = write_compare_files(metrics, out / "cmp.csv", out / "cmp.md", selection=records)
assert table["paper_mean"].notna().all()
save(compare_scatter_from_csv(out / "cmp.csv"), "compare_scatter")
print("built")
"""

VERDICT = """
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from fake_runs import fake_run
from scalecnn.plots import save_figure_formats
from scalecnn.plots.inputs import figure_or_placeholder
from scalecnn.plots.reproduction import plot_reproduction
from scalecnn.reproduction import write_verdict

root = Path(sys.argv[1])
metrics = [
    fake_run(root / "results", m, 0.001, s) / "metrics.json"
    for m in ("standard", "hermite")
    for s in (1, 2, 3)
]
table, runs = write_verdict(metrics, "emoji", 2, root / "v.csv", root / "v_runs.csv")
fig = figure_or_placeholder("verdict", plot_reproduction, table, runs, data="emoji", evaluation=2)
save_figure_formats(fig, [root / "verdict.pdf"])
print("built")
"""

CHECK = """
assert not ATTEMPTS, f"torch or kornia was imported: {ATTEMPTS}"
loaded = sorted({name.split(".")[0] for name in sys.modules} & BLOCKED)
assert not loaded, loaded
print("no torch")
"""


def _run_without_torch(body: str, tmp_path: Path) -> str:
    code = textwrap.dedent(BLOCKER.format(blocked=BLOCKED)) + body + CHECK
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr  # stdout: how far it got
    return proc.stdout


def test_the_blocker_blocks_torch(tmp_path):
    body = """
try:
    import torch  # noqa: F401
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("torch was not blocked")
ATTEMPTS.clear()
"""
    assert "no torch" in _run_without_torch(body, tmp_path)


def test_a_training_command_without_torch_names_the_extra(tmp_path):
    """Installed without the extra 'train', `scalecnn train` stops with exit status 2 and
    a message naming the extra, not a traceback."""
    body = """
import contextlib
import io

from scalecnn.cli import main

err = io.StringIO()
with contextlib.redirect_stderr(err):
    rc = main(["train", "--model", "standard", "--data", "x.npz", "--evaluation", "2",
               "--out", "run"])
assert rc == 2, rc
assert "needs torch" in err.getvalue() and "scalecnn[train]" in err.getvalue(), err.getvalue()
assert ATTEMPTS, "the command never tried to import torch"
ATTEMPTS.clear()
"""
    assert "no torch" in _run_without_torch(body, tmp_path)


def test_tables_and_figures_from_run_outputs_without_torch(tmp_path):
    out = _run_without_torch(BUILD, tmp_path)
    assert "built" in out and "no torch" in out
    for stem in ("fig4", "fig5", "fig6", "fig7", "suppl_fig4", "compare_scatter"):
        assert (tmp_path / "out" / f"{stem}.pdf").is_file(), stem
    for name in ("runs.csv", "gen.csv", "eq.csv", "selection.csv", "t2.tex", "cmp.md"):
        assert (tmp_path / "out" / name).is_file(), name


def test_verdict_without_torch(tmp_path):
    out = _run_without_torch(VERDICT, tmp_path)
    assert "built" in out and "no torch" in out
    assert (tmp_path / "verdict.pdf").is_file() and (tmp_path / "v.csv").is_file()
