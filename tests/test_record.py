"""The reproduction record: environment, benchmark times and generated text."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scalecnn
from scalecnn.provenance import (
    code_commit,
    cpu_model,
    git_commit,
    read_benchmarks,
    time_per_family,
    wall_seconds,
)
from scalecnn.record import write_record
from scalecnn.record_markdown import (
    RecordInputs,
    findings,
    fmt_duration,
    render_record,
    run_commits_line,
)


def _bench(root, rel, seconds, end):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:00\t1.0\n")
    os.utime(path, (end, end))


def test_benchmark_times_by_family_and_wall_time(tmp_path):
    _bench(tmp_path, "train/emoji/standard/eval2/lr0.001/seed1.tsv", 100.0, end=1_000.0)
    _bench(tmp_path, "train/emoji/standard/eval2/lr0.001/seed2.tsv", 300.0, end=1_200.0)
    _bench(tmp_path, "train/emoji/standard/eval2/lr0.01/seed1.tsv", 5.0, end=5_000.0)
    _bench(tmp_path, "figures/fig4_accuracy.tsv", 20.0, end=1_250.0)
    ours = {("emoji", "standard", 2, "0.001", s) for s in (1, 2)}
    bench = read_benchmarks(tmp_path, ours)
    assert sorted(bench["path"]) == [
        "figures/fig4_accuracy.tsv",
        "train/emoji/standard/eval2/lr0.001/seed1.tsv",
        "train/emoji/standard/eval2/lr0.001/seed2.tsv",
    ]
    fam = time_per_family(bench).set_index("family")
    assert fam.at["train", "jobs"] == 2
    assert fam.at["train", "total_s"] == 400.0
    assert fam.at["train", "mean_s"] == 200.0
    assert fam.at["train", "max_s"] == 300.0
    assert fam.at["figures", "total_s"] == 20.0
    # first start: 1000 - 100 = 900 (seed2 started at 1200 - 300 = 900 too); last end 1250
    assert wall_seconds(bench) == pytest.approx(350.0)
    assert len(read_benchmarks(tmp_path)) == 4  # without a filter: every file
    assert np.isnan(wall_seconds(bench.iloc[:0]))


def test_models_not_in_the_paper_count_their_selection_trainings_apart(tmp_path):
    """gaussder trained both rates (its selection); the reported runs are one rate's, but
    the time of all four counts, under its own family. standard's other rate (another
    configuration's run in the same folder) does not count."""
    for lr, seconds in (("0.001", 10.0), ("0.01", 30.0)):
        for seed in (1, 2):
            _bench(tmp_path, f"train/emoji/gaussder/eval2/lr{lr}/seed{seed}.tsv", seconds, 9.0)
            _bench(tmp_path, f"train/emoji/standard/eval2/lr{lr}/seed{seed}.tsv", seconds, 9.0)
    reported = {(m, "0.001") for m in ("gaussder", "standard")}
    ours = {("emoji", m, 2, lr, s) for m, lr in reported for s in (1, 2)}
    fam = time_per_family(read_benchmarks(tmp_path, ours, frozenset({"gaussder"})))
    fam = fam.set_index("family")
    assert fam.at["train (not in the paper)", "jobs"] == 4
    assert fam.at["train (not in the paper)", "total_s"] == 80.0
    assert fam.at["train", "jobs"] == 2
    assert fam.at["train", "total_s"] == 20.0


@pytest.mark.parametrize(
    "seconds,text",
    [(12.34, "12.3 s"), (185, "3 min 05 s"), (3725, "1 h 02 min"), (float("nan"), "–")],
)
def test_fmt_duration(seconds, text):
    assert fmt_duration(seconds) == text


def test_git_commit_marks_a_dirty_tree_but_not_the_record(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    (tmp_path / "docs").mkdir()
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "docs" / "reproduction.md").write_text("old")
    git("add", "a.txt", "docs/reproduction.md")
    git("commit", "-q", "-m", "one")
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "docs" / "reproduction.md").write_text("regenerated")
    (tmp_path / "untracked.txt").write_text("x")
    assert git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("changed")
    assert git_commit(tmp_path) == head + "-dirty"
    assert git_commit(tmp_path / "nonexistent") == "unknown"


def test_code_commit_is_that_of_this_checkout():
    src = Path(scalecnn.__file__).resolve().parent
    head = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    if not head:
        pytest.skip("scalecnn is not imported from a git checkout")
    assert code_commit() in (head, head + "-dirty")


def test_run_commits_line_counts_the_runs_of_every_table():
    runs_a = pd.DataFrame({"commit": ["b2", "a1", "b2", None]})
    runs_b = pd.DataFrame({"seed": [1, 2]})  # an older table without the column
    line = run_commits_line({("emoji", 2): (None, runs_a), ("mnist", 1): (None, runs_b)})
    assert line.endswith("`a1` (1 run), `b2` (2 runs), not recorded (3 runs)")


def test_cpu_model_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU @ 2.0GHz\nflags\t: x\n")
    assert cpu_model(info) == "Test CPU @ 2.0GHz"
    assert cpu_model(tmp_path / "missing")  # falls back to platform, never empty


def _verdict():
    return pd.DataFrame(
        {
            "model": ["standard", "xu", "disco"],
            "seeds": [3, 3, 1],
            "ours_mean": [40.0, 60.0, 70.0],
            "ours_std": [1.0, 2.0, np.nan],
            "paper_mean": [39.1, 40.3, 73.5],
            "paper_std": [3.7, 3.9, 3.5],
            "paper_runs": [50, 50, 50],
            "diff": [0.9, 19.7, -3.5],
            "p_value": [0.3, 0.004, np.nan],
            "verdict": ["consistent", "differs", "insufficient"],
        }
    )


def test_findings_are_generated_from_the_table():
    lines = findings(_verdict())
    assert lines[0].startswith("1 of 2 model(s) tested are consistent")
    assert "Xu et al. differs: ours 60.00 % vs the paper's 40.30 % (+19.70 pp, above; " in lines[1]
    assert "p = 0.004" in lines[1]
    assert lines[2] == "Too few ok seeds for the test: DISCO (1 ok seed(s))."
    consistent = _verdict().iloc[:1]
    assert findings(consistent)[-1] == "No model differs from the paper at p < 0.01."
    new = pd.concat(
        [
            consistent,
            consistent.assign(model="gaussder", ours_mean=50.0, verdict="not in the paper"),
        ]
    )
    # gaussder 50 ± 1 vs standard 40 ± 1, three seeds each: t = 12.2, df 4, p = 2.6e-4
    assert findings(new)[-1] == (
        "GaussDerNet (not in the paper) against the best of the paper's models here, "
        "Standard: 50.00 % vs 40.00 % (+10.00 pp, Welch p = 0.00026): **better** (at p < 0.01)."
    )


def _runs():
    return pd.DataFrame(
        {
            "model": ["standard"] * 3,
            "seed": [1, 2, 3],
            "lr": [0.001] * 3,
            "test_acc": [39.0, 40.0, 41.0],
            "best_epoch": [5, 6, 7],
            "epochs": [15, 16, 17],
            "train_seconds": [60.0, 60.0, 60.0],
            "status": ["ok"] * 3,
        }
    )


def _protocol():
    return {
        "max_epochs": 1,
        "patience": 10,
        "batch_size": 16,
        "kernel_size": 7,
        "interpolation": "bicubic",
        "reshuffle": False,
        "repetitions": {"emoji": 3},
        "learning_rates": [0.01, 0.001],
        "selection_seeds": 5,
        "models": ["standard"],
        "paper_lr_models": [],
    }


def test_render_record_without_notes_and_with_a_protocol_difference():
    md = render_record(
        RecordInputs(
            verdicts={("emoji", 2): (_verdict(), _runs())}, protocol=_protocol(), threads=2
        )
    )
    assert md.startswith("# Reproduction record\n")
    assert "Protocol: **not a reproduction: max 1 epoch, 3 seeds (paper: 50)**" in md
    assert "| max epochs | 1 | 200 |" in md
    assert (
        "| Xu et al. | 3 | 60.00 | 2.00 | 40.30 | 3.90 | 50 | +19.70 | 0.004 | **differs** |" in md
    )
    assert "| Standard | 3 | 16.0 | 6.0 | 1 min 00 s |" in md
    assert "ρ = 1.000" in md  # 40 < 60 < 70 and 39.1 < 40.3 < 73.5
    assert md.rstrip().endswith("No notes yet.")


def test_write_record_copies_the_tables_and_figures_and_writes_the_markdown(tmp_path):
    tables = tmp_path / "results" / "tables"
    tables.mkdir(parents=True)
    _verdict().to_csv(tables / "verdict.csv", index=False)
    _runs().to_csv(tables / "runs.csv", index=False)
    (tables / "verdict.png").write_bytes(b"png")
    (tables / "compare.png").write_bytes(b"cmp")
    bench = tmp_path / "results" / "benchmarks"
    _bench(bench, "train/emoji/standard/eval2/lr0.001/seed1.tsv", 100.0, end=1_000.0)
    _bench(bench, "train/emoji/standard/eval2/lr0.01/seed1.tsv", 5.0, end=5_000.0)  # not reported
    notes = tmp_path / "notes.md"
    notes.write_text("Hand-written.\n")
    docs = tmp_path / "docs"
    out = docs / "reproduction"
    text = write_record(
        md=docs / "reproduction.md",
        pairs=[("emoji", 2)],
        verdict_csvs=[tables / "verdict.csv"],
        runs_csvs=[tables / "runs.csv"],
        pngs=[tables / "verdict.png"],
        out_csvs=[out / "emoji_eval2.csv"],
        out_runs_csvs=[out / "emoji_eval2_runs.csv"],
        out_pngs=[out / "emoji_eval2.png"],
        protocol=_protocol(),
        compare_png=tables / "compare.png",
        out_compare_png=out / "compare.png",
        bench_dir=bench,
        notes=notes,
        repo=tmp_path,
        configfile="config/quick.yaml",
        threads=2,
    )
    assert (docs / "reproduction.md").read_text() == text
    assert (out / "emoji_eval2.csv").read_text() == (tables / "verdict.csv").read_text()
    assert (out / "emoji_eval2_runs.csv").read_text() == (tables / "runs.csv").read_text()
    assert (out / "emoji_eval2.png").read_bytes() == b"png"
    assert (out / "compare.png").read_bytes() == b"cmp"
    assert "![Emoji" in text and "](reproduction/emoji_eval2.png)" in text
    assert "- tables: [verdict](reproduction/emoji_eval2.csv), " in text
    assert "(reproduction/compare.png)" in text
    assert "- configuration: `config/quick.yaml`" in text
    assert "- git commit: `unknown`" in text  # tmp_path is no git repository
    assert "| train | 1 | 1 min 40 s |" in text  # the rate that was not reported is left out
    assert text.rstrip().endswith("Hand-written.")
    with pytest.raises(ValueError, match="one file per"):
        write_record(
            md=docs / "x.md",
            pairs=[("emoji", 2)],
            verdict_csvs=[],
            runs_csvs=[],
            pngs=[],
            out_csvs=[],
            out_runs_csvs=[],
            out_pngs=[],
            protocol=_protocol(),
        )
