"""Atomic writes and safe loading."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from train_cli import kill_after_epoch_env, train_command

from scalecnn import atomic


def test_atomic_path_renames_on_success_and_keeps_nothing_on_error(tmp_path):
    target = tmp_path / "sub" / "table.csv"
    atomic.write_csv(target, pd.DataFrame({"a": [1, 2]}))
    assert pd.read_csv(target)["a"].tolist() == [1, 2]
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert pd.read_csv(target)["a"].tolist() == [1, 2]  # old content intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.csv"]


def test_written_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "x.txt", "hi")
    finally:
        os.umask(old)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o644


def test_process_killed_mid_write_leaves_no_file_at_the_final_path(tmp_path):
    target = tmp_path / "big.npz"
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from scalecnn import atomic
        with atomic.atomic_path({str(target)!r}) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(b"x" * 1_000_000)
                fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    leftovers = list(tmp_path.iterdir())
    assert all(p.name.startswith(".big.npz.") and p.name.endswith(".tmp.npz") for p in leftovers)


def test_json_writes_non_finite_as_null(tmp_path):
    atomic.write_json(tmp_path / "m.json", {"a": float("nan"), "b": np.float32(1.5), "c": [np.inf]})
    assert (tmp_path / "m.json").read_text().replace(" ", "").replace(
        "\n", ""
    ) == '{"a":null,"b":1.5,"c":[null]}'


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_tampered_weights_cannot_execute_code(tmp_path, tiny_stir, monkeypatch):
    from scalecnn.evaluation import load_run_model
    from scalecnn.training import RunConfig, train_run

    run = tmp_path / "run"
    train_run(
        RunConfig(model="standard", data=str(tiny_stir), evaluation=4, max_epochs=1, device="cpu"),
        run,
    )
    with open(run / "model.pt", "wb") as fh:
        pickle.dump({"conv1.weight": _Exploit()}, fh)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pickle.UnpicklingError):
        load_run_model(run, 1, 3)
    assert not (tmp_path / "PWNED").exists()


def test_pickled_data_file_is_refused(tmp_path):
    from scalecnn.data import STIRDataset, STIRFormatError

    path = tmp_path / "evil.npz"
    np.savez(path, imgs=np.array([_Exploit()], dtype=object))
    with pytest.raises((STIRFormatError, ValueError)):
        STIRDataset(path).to_numpy("train", [64])
    assert not (tmp_path / "PWNED").exists()


def test_torch_checkpoint_loads_with_weights_only(tmp_path, tiny_stir):
    from scalecnn.training import CHECKPOINT_NAME

    out = tmp_path / "run"
    subprocess.run(train_command(tiny_stir, out, "--max-epochs", "3"), env=kill_after_epoch_env(1))
    ckpt = torch.load(out / CHECKPOINT_NAME, weights_only=True)
    assert ckpt["train_state"]["epoch"] == 1
