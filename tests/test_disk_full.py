"""A full disk: one message naming the file, nothing half-written, the old file intact.

The disk is simulated: ``pathlib.Path.write_bytes`` (how every torch file is written, see
``scalecnn.atomic.save_torch``) writes half the data and raises ``OSError(ENOSPC)``, as a
write onto a full device does; or the writer in an atomic write raises it itself.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from scalecnn import atomic
from scalecnn.atomic import DiskFullError
from scalecnn.cli import main
from scalecnn.training import CHECKPOINT_NAME


@dataclass
class FullDisk:
    """How many more ``Path.write_bytes`` calls find room; ``None``: all of them."""

    room_for: int | None = None
    refused: list[Path] | None = None


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> FullDisk:
    disk = FullDisk(refused=[])
    write_bytes = Path.write_bytes

    def write_until_full(self: Path, data) -> int:
        if disk.room_for is not None:
            if disk.room_for == 0:
                view = memoryview(data).cast("B")
                write_bytes(self, view[: len(view) // 2])  # part of it fits, then ENOSPC
                disk.refused.append(self)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            disk.room_for -= 1
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_until_full)
    return disk


@pytest.fixture
def restore_logging():
    """The command line configures the root logger; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_torch_file_on_a_full_disk_keeps_the_previous_one(tmp_path, full_disk):
    path = tmp_path / CHECKPOINT_NAME
    atomic.save_torch(path, {"epoch": torch.tensor(1)})
    full_disk.room_for = 0
    with pytest.raises(DiskFullError) as err:
        atomic.save_torch(path, {"epoch": torch.tensor(2), "weights": torch.zeros(1000)})
    assert full_disk.refused and full_disk.refused[0].parent == tmp_path  # it did write
    assert str(err.value).startswith(f"no space left on the device of {path} (")
    assert "free some space" in str(err.value)
    assert err.value.errno == errno.ENOSPC and err.value.path == path
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert torch.load(path, weights_only=True) == {"epoch": torch.tensor(1)}
    assert list(tmp_path.iterdir()) == [path]  # the temporary file is gone


@pytest.mark.parametrize(
    "code,what", [(errno.ENOSPC, "no space left"), (errno.EDQUOT, "disk quota exceeded")]
)
def test_atomic_write_reports_a_full_disk_whatever_the_writer(tmp_path, code, what):
    target = tmp_path / "metrics.json"
    atomic.write_json(target, {"old": 1})
    with pytest.raises(DiskFullError) as err, atomic.atomic_path(target) as tmp:
        with open(tmp, "w") as fh:
            fh.write('{"new": ')
        raise OSError(code, os.strerror(code))
    assert str(err.value).startswith(f"{what} on the device of {target}")
    assert err.value.errno == code
    assert target.read_text() == '{\n  "old": 1\n}\n'
    assert list(tmp_path.iterdir()) == [target]


def test_other_write_errors_pass_unchanged(tmp_path):
    with pytest.raises(PermissionError), atomic.atomic_path(tmp_path / "x.txt"):
        raise PermissionError(errno.EACCES, "denied")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "room_for,refused,saved_epoch",
    [(1, CHECKPOINT_NAME, 1), (2, "model.pt", 2)],
    ids=["second-checkpoint", "model-after-the-last-epoch"],
)
def test_train_command_on_a_full_disk(
    tiny_stir, tmp_path, full_disk, capsys, restore_logging, room_for, refused, saved_epoch
):
    """`scalecnn train` with room for ``room_for`` torch files: exit status 1, the one
    message naming the file and where the rerun resumes, no traceback, the checkpoint of
    ``saved_epoch`` intact, no temporary file; with room again the rerun resumes there."""
    out = tmp_path / "run"
    argv = ["train", "--model", "standard", "--data", str(tiny_stir), "--evaluation", "2"]
    argv += ["--max-epochs", "2", "--threads", "1", "--device", "cpu", "--out", str(out)]
    full_disk.room_for = room_for
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    ckpt = out / CHECKPOINT_NAME
    lines = [line for line in err.splitlines() if "no space left" in line]
    assert len(lines) == 1, err[-2000:]
    assert re.sub(r" \([^()]+ free\)", "", lines[0]) == (  # the free space is the machine's
        f"scalecnn train: error: no space left on the device of {out / refused}: {refused} "
        "was not written (its previous version, if any, is intact); free some space there "
        f"(or choose another --out) and rerun: it resumes from {ckpt} (after epoch "
        f"{saved_epoch})"
    )
    assert torch.load(ckpt, weights_only=True)["train_state"]["epoch"] == saved_epoch
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_NAME]

    full_disk.room_for = None  # room again
    assert main(argv) == 0
    assert (
        f"resuming {out} from the checkpoint after epoch {saved_epoch}" in capsys.readouterr().err
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "history.csv",
        "metrics.json",
        "model.pt",
        "predictions.npy",
    ]
