"""One training run: outputs, determinism, early stopping, resume, non-finite loss."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from train_cli import kill_after_epoch_env, signal_at_step_env, train_command

from scalecnn.atomic import atomic_path
from scalecnn.provenance import code_commit
from scalecnn.selection import choose_lr
from scalecnn.signals import Stopped, abort_on_signals
from scalecnn.training import (
    CHECKPOINT_NAME,
    HISTORY_COLUMNS,
    RunConfig,
    SplitTensors,
    TrainState,
    evaluate_split,
    record_epoch,
    train_run,
)

TIMING_KEYS = {"train_time_last_epoch", "train_time_mean"}


def _config(data, **kw):
    base = dict(
        model="standard",
        data=str(data),
        evaluation=2,
        lr=1e-3,
        seed=3,
        max_epochs=3,
        patience=10,
        device="cpu",
        threads=1,
    )
    base.update(kw)
    return RunConfig(**base)


def _strip_times(metrics):
    m = {k: v for k, v in metrics.items() if k not in TIMING_KEYS}
    m["history"] = {k: v for k, v in m["history"].items() if k != "train_time"}
    return m


def test_three_epoch_run_writes_all_outputs_and_is_bit_identical(tiny_stir, tmp_path):
    m1 = train_run(_config(tiny_stir), tmp_path / "a")
    m2 = train_run(_config(tiny_stir), tmp_path / "b")
    for name in ("metrics.json", "history.csv", "model.pt", "predictions.npy"):
        assert (tmp_path / "a" / name).is_file()
    assert not (tmp_path / "a" / CHECKPOINT_NAME).exists()
    assert _strip_times(m1) == _strip_times(m2)
    s1 = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    s2 = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    on_disk = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert on_disk["epochs"] == 3 and on_disk["status"] == "ok"
    assert 0 <= on_disk["test_acc"] <= 100 and 0 <= on_disk["best_val_acc"] <= 100
    assert on_disk["params"]["model"] == "standard" and on_disk["params"]["lr"] == 1e-3
    assert on_disk["commit"] == code_commit()  # the code this run used
    hist = pd.read_csv(tmp_path / "a" / "history.csv")
    assert list(hist.columns) == [
        "epoch",
        "train_loss",
        "train_acc",
        "train_time",
        "val_loss",
        "val_acc",
    ]
    assert hist["epoch"].tolist() == [1, 2, 3]
    assert on_disk["best_val_acc"] == hist["val_acc"].max()
    # scenario 2 tests sizes 17..32 and 49..64 → 32 sizes × 3 classes × 2 instances
    preds = np.load(tmp_path / "a" / "predictions.npy")
    assert preds.shape == (32 * 3 * 2,) and preds.dtype == np.int64


def _evaluate_saved_model(run_dir, data):
    """(accuracy, predictions) of the run's saved ``model.pt`` on its Mid2Rest test split, CPU."""
    from scalecnn.data import STIRDataset
    from scalecnn.evaluation import load_run_model

    ds = STIRDataset(data)
    model = load_run_model(run_dir, ds.num_channels, ds.num_classes)
    images, labels = ds.to_numpy("test", list(range(17, 33)) + list(range(49, 65)))
    split = SplitTensors(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)))
    _, acc, preds = evaluate_split(model, split, 16)
    return acc, preds


def test_test_accuracy_is_that_of_the_best_state(tiny_stir, tmp_path):
    metrics = train_run(_config(tiny_stir, max_epochs=4), tmp_path)
    acc, preds = _evaluate_saved_model(tmp_path, tiny_stir)
    assert acc == pytest.approx(metrics["test_acc"])
    assert np.array_equal(preds, np.load(tmp_path / "predictions.npy"))


def test_scale_model_trains_on_each_device(tiny_stir, tmp_path, device):
    """pixel_pool (FFT path) trains on the device; its saved model predicts alike on CPU."""
    metrics = train_run(
        _config(tiny_stir, model="pixel_pool", evaluation=2, max_epochs=1, device=device),
        tmp_path,
    )
    assert metrics["params"]["device"].startswith(device)
    assert metrics["status"] == "ok" and 0 <= metrics["test_acc"] <= 100
    _, preds = _evaluate_saved_model(tmp_path, tiny_stir)
    saved = np.load(tmp_path / "predictions.npy")
    assert saved.shape == preds.shape
    assert (saved != preds).sum() <= 1  # a near-tie may flip between devices


def test_early_stopping_after_patience(tiny_stir, tmp_path):
    # lr 0 never changes the weights: epoch 1 is best, then `patience` epochs without improvement
    metrics = train_run(_config(tiny_stir, lr=1e-12, patience=2, max_epochs=50), tmp_path)
    assert metrics["best_epoch"] == 1
    assert metrics["epochs"] == 3


def test_nonfinite_loss_is_recorded_and_the_run_completes(tiny_stir, tmp_path):
    metrics = train_run(_config(tiny_stir, lr=1e30, max_epochs=5), tmp_path)
    assert metrics["status"] == "nonfinite"
    assert "non-finite" in metrics["message"]
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["status"] == "nonfinite"
    assert (tmp_path / "model.pt").is_file()


def test_invalid_parameters_name_the_key(tiny_stir, tmp_path):
    with pytest.raises(ValueError, match="lr"):
        train_run(_config(tiny_stir, lr=-1.0), tmp_path)
    with pytest.raises(ValueError, match="evaluation"):
        train_run(_config(tiny_stir, evaluation=7), tmp_path)
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        train_run(_config(tiny_stir, model="nope"), tmp_path)


def _cli(tiny_stir, out, *extra):
    return train_command(
        tiny_stir, out, "--seed", "2", "--max-epochs", "3", "--threads", "1", *extra
    )


@pytest.fixture(scope="module")
def reference_run(tiny_stir, tmp_path_factory):
    """The uninterrupted run of :func:`_cli`: what every killed and resumed run must equal."""
    out = tmp_path_factory.mktemp("reference") / "run"
    subprocess.run(_cli(tiny_stir, out), check=True, capture_output=True)
    return out


def _assert_same_run(ref, out, resumes=1):
    """Same metrics (timings and the resume count aside) and bit-identical weights; the
    resumed run counts its ``resumes``; the checkpoint is gone."""
    got = json.loads((out / "metrics.json").read_text())
    want = json.loads((ref / "metrics.json").read_text())
    assert (want.pop("resumes"), got.pop("resumes")) == (0, resumes)
    assert _strip_times(want) == _strip_times(got)
    s1 = torch.load(ref / "model.pt", weights_only=True)
    s2 = torch.load(out / "model.pt", weights_only=True)
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not (out / CHECKPOINT_NAME).exists()


def test_sigkill_then_resume_is_bit_identical(tiny_stir, tmp_path, reference_run):
    out = tmp_path / "run"
    killed = subprocess.run(_cli(tiny_stir, out), env=kill_after_epoch_env(1))
    assert killed.returncode == -9
    assert torch.load(out / CHECKPOINT_NAME, weights_only=True)["train_state"]["epoch"] == 1
    assert not (out / "metrics.json").exists()
    rerun = subprocess.run(_cli(tiny_stir, out), check=True, capture_output=True, text=True)
    assert re.search(r"resuming .* after epoch 1\b", rerun.stderr), rerun.stderr
    _assert_same_run(reference_run, out)


def test_cli_help_and_bad_value(tiny_stir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "scalecnn.cli", "train", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "--max-epochs" in out.stdout
    bad = subprocess.run(
        _cli(tiny_stir, tmp_path / "run", "--lr", "-1"), capture_output=True, text=True
    )
    assert bad.returncode == 2, bad.stderr
    assert "scalecnn train: error: invalid lr=-1.0: must be positive" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
    unknown = subprocess.run(
        _cli(tiny_stir, tmp_path / "run", "--evaluation", "9"), capture_output=True, text=True
    )
    assert unknown.returncode == 2 and "invalid choice: 9" in unknown.stderr, unknown.stderr


@pytest.mark.parametrize(
    "accs,expected",
    [
        ({0.01: [50, 60, 70, 80, 90], 0.001: [50, 60, 69, 80, 90]}, 0.01),  # strictly higher
        ({0.01: [50, 60, 70, 80, 90], 0.001: [10, 20, 70, 95, 99]}, 0.001),  # tie → 1e-3
        ({0.01: [None, None, None, 99, 99], 0.001: [1, 2, 3, 4, 5]}, 0.001),  # failed runs count 0
    ],
)
def test_choose_lr(accs, expected):
    chosen, medians = choose_lr(accs)
    assert chosen == expected
    assert medians[0.001] == float(np.median([0 if a is None else a for a in accs[0.001]]))


def test_record_epoch_keeps_the_best_state_on_strict_improvement_only():
    model = torch.nn.Linear(2, 2)
    state = TrainState()
    record_epoch(state, model, (1, 1.0, 50.0, 0.1, 1.0, 60.0))
    best = state.best_state["weight"].clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    record_epoch(state, model, (2, 0.9, 55.0, 0.1, 0.9, 60.0))  # a tie is no improvement
    assert state.best_epoch == 1 and state.epochs_without_improvement == 1
    assert torch.equal(state.best_state["weight"], best)
    record_epoch(state, model, (3, 0.8, 60.0, 0.1, 0.8, 61.0))
    assert state.best_epoch == 3 and state.epochs_without_improvement == 0 and state.epoch == 3
    assert torch.equal(state.best_state["weight"], model.weight)
    assert [h["epoch"] for h in state.history] == [1, 2, 3]
    assert list(state.history[0]) == list(HISTORY_COLUMNS)


@pytest.mark.parametrize("kill_after", [False, True], ids=["sigterm", "sigterm-then-sigkill"])
def test_sigterm_stops_at_a_step_and_the_rerun_resumes_bit_identical(
    tiny_stir, tmp_path, reference_run, kill_after
):
    """SIGTERM after step 3 of epoch 2 (the run signals itself there: deterministic): the
    partial epoch is abandoned, one log line names the epoch and step, exit status 143, the
    checkpoint of epoch 1 stays; a SIGKILL right after leaves it intact too. The rerun
    resumes from it and ends bit-identical to the uninterrupted run."""
    out = tmp_path / "run"
    signals = ("SIGTERM", "SIGKILL") if kill_after else ()
    proc = subprocess.run(
        _cli(tiny_stir, out), env=signal_at_step_env(2, 3, *signals), capture_output=True, text=True
    )
    err = proc.stderr
    ckpt = torch.load(out / CHECKPOINT_NAME, weights_only=True)  # intact, loadable
    assert ckpt["train_state"]["epoch"] == 1
    assert not (out / "metrics.json").exists()
    if kill_after:
        assert proc.returncode == -signal.SIGKILL, err[-3000:]
    else:
        assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
        lines = re.findall(r"stopped by SIGTERM after epoch \d+, step \d+; rerun resumes.*", err)
        assert lines == [
            f"stopped by SIGTERM after epoch 1, step 3; rerun resumes from {out / CHECKPOINT_NAME}"
            " (after epoch 1); its 3 step(s) of epoch 2 are redone"
        ], err[-3000:]
        assert "Traceback" not in err
    rerun = subprocess.run(_cli(tiny_stir, out), check=True, capture_output=True, text=True)
    assert re.search(r"resuming .* after epoch 1\b", rerun.stderr), rerun.stderr
    _assert_same_run(reference_run, out)


def test_stop_signal_in_a_job_without_checkpoint_leaves_no_file(tmp_path, caplog):
    """abort_on_signals (evaluations, disco-basis): the signal ends the job at once with
    status 128 + signal; an atomic write in progress leaves nothing behind."""
    target = tmp_path / "out.npy"
    with (
        pytest.raises(Stopped) as info,
        atomic_path(target) as tmp,
        abort_on_signals("a test job"),
    ):
        tmp.write_bytes(b"partial")
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(5)  # the handler raises before this ends
    assert info.value.code == 128 + signal.SIGUSR1
    assert "stopped by SIGUSR1 during a test job; nothing written" in caplog.text
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # handlers restored
