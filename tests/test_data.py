"""STIR loader: order, shuffling, errors, laziness; synthetic writer."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from scalecnn.data import (
    DATASETS,
    STIRDataset,
    STIRFormatError,
    validate_stir_file,
    write_synthetic_stir,
)

N_CLASSES, N_INST = 3, 2
META = np.array(
    [
        ["title", "hand-made"],
        ["description", "test"],
        ["author", "tests"],
        ["license", "CC0"],
        ["version", "0"],
        ["date", "2024-01-01"],
    ]
)


def _arrays(channels: int = 1, n: int = N_CLASSES, m: int = N_INST) -> dict[str, np.ndarray]:
    """A STIR file whose image pixels encode (split, scale index, class, instance)."""
    lead = (3, 48, n, m)
    shape = (*lead, 64, 64) if channels == 1 else (*lead, 64, 64, 3)
    imgs = np.zeros(shape, dtype=np.uint8)
    s, i, c, k = np.meshgrid(*(np.arange(d) for d in lead), indexing="ij")
    if channels == 1:
        imgs[..., 0, 0] = s
        imgs[..., 0, 1] = i
        imgs[..., 0, 2] = c
        imgs[..., 0, 3] = k
        imgs[..., 63, 63] = 255
    else:
        for ch in range(3):  # channel ch holds 10 * ch + value
            imgs[..., 0, 0, ch] = s + 10 * ch
            imgs[..., 0, 1, ch] = i + 100 * (ch == 1)
            imgs[..., 0, 2, ch] = c
            imgs[..., 0, 3, ch] = k
    psts = np.stack([i % 7, 10 * c + k], axis=-1).astype(np.int64)
    return {
        "imgs": imgs,
        "lbls": c.astype(np.int64),
        "scls": (64 - i).astype(np.int64),
        "psts": psts,
        "metadata": META,
        "lbldata": np.array([f"class{j}" for j in range(n)]),
    }


def _write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez_compressed(path, **arrays)
    return path


@pytest.fixture
def hand_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "hand.npz", _arrays())


def _decode(images: np.ndarray) -> np.ndarray:
    """(N, 4) of split, scale index, class, instance from gray images in [0, 1]."""
    return np.rint(images[:, 0, 0, :4] * 255).astype(int)


def test_order_before_shuffle(hand_file: Path) -> None:
    ds = STIRDataset(hand_file)
    scales = [20, 64, 33]
    images, labels = ds.to_numpy("valid", scales, shuffle=False)
    assert images.shape == (len(scales) * N_CLASSES * N_INST, 1, 64, 64)
    assert images.dtype == np.float32 and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    expected = [(1, 64 - s, c, k) for s in scales for c in range(N_CLASSES) for k in range(N_INST)]
    assert _decode(images).tolist() == [list(e) for e in expected]
    assert labels.tolist() == [e[2] for e in expected]
    sizes, positions = ds.get_latents("valid", scales, shuffle=False)
    assert sizes.dtype == np.int64 and positions.shape == (len(expected), 2)
    assert sizes.tolist() == [64 - e[1] for e in expected]
    assert positions.tolist() == [[e[1] % 7, 10 * e[2] + e[3]] for e in expected]


def test_shuffle_is_fixed_and_keeps_arrays_aligned(hand_file: Path) -> None:
    ds = STIRDataset(hand_file)
    scales = list(range(17, 65))
    plain, plain_labels = ds.to_numpy("test", scales, shuffle=False)
    images, labels = ds.to_numpy("test", scales)
    images2, labels2 = ds.to_numpy("test", scales, shuffle=True)
    sizes, positions = ds.get_latents("test", scales)
    np.testing.assert_array_equal(images, images2)
    np.testing.assert_array_equal(labels, labels2)
    perm = np.arange(len(labels))
    np.random.RandomState(42).shuffle(perm)
    np.testing.assert_array_equal(images, plain[perm])
    np.testing.assert_array_equal(labels, plain_labels[perm])
    assert not np.array_equal(labels, plain_labels)
    codes = _decode(images)
    assert (codes[:, 0] == 2).all()
    np.testing.assert_array_equal(codes[:, 2], labels)
    np.testing.assert_array_equal(64 - codes[:, 1], sizes)
    np.testing.assert_array_equal(positions[:, 0], codes[:, 1] % 7)
    np.testing.assert_array_equal(positions[:, 1], 10 * codes[:, 2] + codes[:, 3])


def test_shuffle_leaves_global_numpy_state_alone(hand_file: Path) -> None:
    ds = STIRDataset(hand_file)
    np.random.seed(3)
    expected = np.random.rand()
    np.random.seed(3)
    ds.to_numpy("train", [17, 18])
    assert np.random.rand() == expected


def test_colour_file_is_channels_first(tmp_path: Path) -> None:
    ds = STIRDataset(_write(tmp_path / "rgb.npz", _arrays(channels=3)))
    assert ds.num_channels == 3 and ds.num_classes == N_CLASSES
    images, labels = ds.to_numpy("train", [40, 17], shuffle=False)
    assert images.shape == (2 * N_CLASSES * N_INST, 3, 64, 64)
    assert images.flags["C_CONTIGUOUS"]
    px = np.rint(images[:, :, 0, :4] * 255).astype(int)  # (N, 3 channels, 4 pixels)
    assert px[:, :, 0].tolist() == [[0, 10, 20]] * len(labels)
    assert px[0, :, 1].tolist() == [24, 124, 24]
    np.testing.assert_array_equal(px[:, 0, 2], labels)


def test_gray_num_channels_and_metadata(hand_file: Path) -> None:
    ds = STIRDataset(hand_file)
    assert ds.num_channels == 1
    assert ds.num_classes == N_CLASSES and ds.num_instances == N_INST
    assert list(ds.metadata) == ["title", "description", "author", "license", "version", "date"]
    assert ds.metadata["title"] == "hand-made"
    assert list(ds.labeldata) == ["class0", "class1", "class2"]


def test_to_torch(hand_file: Path) -> None:
    ds = STIRDataset(hand_file)
    data = ds.to_torch("train", [30, 31])
    assert isinstance(data, torch.utils.data.TensorDataset)
    x, y = data.tensors
    assert x.dtype == torch.float32 and tuple(x.shape) == (12, 1, 64, 64)
    assert y.dtype == torch.int64
    images, labels = ds.to_numpy("train", [30, 31])
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)


@pytest.mark.parametrize("split", ["training", "val", "", "TRAIN"])
def test_bad_split(hand_file: Path, split: str) -> None:
    ds = STIRDataset(hand_file)
    with pytest.raises(ValueError, match="split") as err:
        ds.to_numpy(split, [20])
    assert repr(split) in str(err.value) and "train" in str(err.value)
    with pytest.raises(ValueError, match="split"):
        ds.get_latents(split, [20])


@pytest.mark.parametrize("scale", [16, 65, 0, -3, 20.5, "20"])
def test_bad_scale(hand_file: Path, scale: object) -> None:
    ds = STIRDataset(hand_file)
    with pytest.raises(ValueError, match="17..64") as err:
        ds.to_numpy("train", [20, scale])
    assert repr(scale) in str(err.value)
    with pytest.raises(ValueError, match="17..64"):
        ds.get_latents("test", [scale])


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        STIRDataset(missing)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        validate_stir_file(missing)


def test_not_an_npz(tmp_path: Path) -> None:
    bad = tmp_path / "text.npz"
    bad.write_text("this is not a zip archive\n")
    with pytest.raises(STIRFormatError, match="text.npz"):
        STIRDataset(bad)
    npy = tmp_path / "plain.npz"
    with open(npy, "wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(STIRFormatError, match="plain.npz"):
        validate_stir_file(npy)


def test_truncated_file(hand_file: Path) -> None:
    data = hand_file.read_bytes()
    hand_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(STIRFormatError, match="hand.npz"):
        STIRDataset(hand_file)
    assert issubclass(STIRFormatError, ValueError)


def test_corrupt_image_data(tmp_path: Path) -> None:
    arrays = _arrays()
    rng = np.random.default_rng(0)
    arrays["imgs"] = rng.integers(0, 256, arrays["imgs"].shape, dtype=np.uint8)
    path = _write(tmp_path / "corrupt.npz", arrays)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("imgs.npy")
    raw = bytearray(path.read_bytes())
    middle = info.header_offset + 100 + info.compress_size // 2
    raw[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    ds = STIRDataset(path)  # headers are intact
    with pytest.raises(STIRFormatError, match="corrupt.npz"):
        ds.to_numpy("train", [20])
    with pytest.raises(STIRFormatError, match="corrupt.npz"):
        validate_stir_file(path, deep=True)


def _broken(key: str, value: np.ndarray | None) -> dict[str, np.ndarray]:
    arrays = _arrays()
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value
    return arrays


BROKEN = {
    "missing psts": (_broken("psts", None), "psts"),
    "missing imgs": (_broken("imgs", None), "imgs"),
    "lbls shape": (_broken("lbls", np.zeros((3, 48, 3, 1), np.int64)), "lbls"),
    "scls shape": (_broken("scls", np.zeros((3, 48, 2, 2), np.int64)), "scls"),
    "psts shape": (_broken("psts", np.zeros((3, 48, 3, 2, 3), np.int64)), "psts"),
    "image size": (_broken("imgs", np.zeros((3, 48, 3, 2, 32, 32), np.uint8)), "64x64"),
    "47 scales": (_broken("imgs", np.zeros((3, 47, 3, 2, 64, 64), np.uint8)), "48"),
    "2 splits": (_broken("imgs", np.zeros((2, 48, 3, 2, 64, 64), np.uint8)), "3 splits"),
    "4 colours": (_broken("imgs", np.zeros((3, 48, 3, 2, 64, 64, 4), np.uint8)), "colour"),
    "imgs dtype": (_broken("imgs", np.zeros((3, 48, 3, 2, 64, 64), np.float32)), "uint8"),
    "lbls dtype": (_broken("lbls", np.zeros((3, 48, 3, 2), np.float64)), "integer"),
    "lbldata length": (_broken("lbldata", np.array(["a", "b"])), "lbldata"),
    "metadata shape": (_broken("metadata", META[:5]), "metadata"),
    "labels out of range": (_broken("lbls", np.full((3, 48, 3, 2), 3, np.int64)), "labels"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_format_errors(tmp_path: Path, case: str) -> None:
    arrays, needle = BROKEN[case]
    path = _write(tmp_path / "broken.npz", arrays)
    with pytest.raises(STIRFormatError, match="broken.npz") as err:
        validate_stir_file(path)
    assert needle in str(err.value)
    with pytest.raises(STIRFormatError):
        ds = STIRDataset(path)
        ds.to_numpy("train", [17])


def test_object_arrays_are_rejected_without_pickle(tmp_path: Path) -> None:
    arrays = _broken("lbldata", np.array(["a", "b", "c"], dtype=object))
    path = tmp_path / "pickled.npz"
    np.savez_compressed(path, **arrays)
    with pytest.raises(STIRFormatError, match="lbldata"):
        validate_stir_file(path)


def _count_npz_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record, from now on, the name of every array read from an ``.npz`` file.

    Returns the list that ``NpzFile.__getitem__`` appends each key to.
    """
    reads: list[str] = []
    original = np.lib.npyio.NpzFile.__getitem__

    def counting(self, key):
        reads.append(key)
        return original(self, key)

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", counting)
    return reads


def test_arrays_are_decompressed_lazily_and_once(hand_file: Path, monkeypatch) -> None:
    reads = _count_npz_reads(monkeypatch)
    ds = STIRDataset(hand_file)
    assert reads == []
    ds.get_latents("train", [20, 21])
    ds.get_latents("test", [17], shuffle=False)
    assert sorted(reads) == ["psts", "scls"]
    ds.to_numpy("train", [20])
    ds.to_numpy("valid", [64, 63])
    ds.to_torch("test", [30])
    assert sorted(reads) == ["imgs", "lbls", "psts", "scls"]
    _ = ds.metadata, ds.metadata, ds.labeldata, ds.labeldata
    assert sorted(reads) == ["imgs", "lbldata", "lbls", "metadata", "psts", "scls"]


def test_validate_does_not_decompress_images(hand_file: Path, monkeypatch) -> None:
    reads = _count_npz_reads(monkeypatch)
    info = validate_stir_file(hand_file)
    assert (info.classes, info.instances, info.channels) == (N_CLASSES, N_INST, 1)
    assert "imgs" not in reads


def test_returned_arrays_do_not_alias_the_cache(hand_file: Path) -> None:
    ds = STIRDataset(hand_file)
    images, labels = ds.to_numpy("train", [20], shuffle=False)
    images[:] = 0
    labels[:] = 99
    again, labels2 = ds.to_numpy("train", [20], shuffle=False)
    assert again.max() == 1.0 and labels2.max() < N_CLASSES


def test_datasets_table() -> None:
    assert DATASETS["emoji"] == (36, 1, 1)
    assert DATASETS["mnist"].classes == 10 and DATASETS["mnist"].instances == 50
    assert DATASETS["trafficsign"].channels == 3 and DATASETS["aerial"].classes == 9


# -- synthetic files -------------------------------------------------------------------


def test_synthetic_format(tiny_stir: Path, tiny_stir_rgb: Path) -> None:
    with np.load(tiny_stir, allow_pickle=False) as z:
        assert z["imgs"].shape == (3, 48, 3, 2, 64, 64) and z["imgs"].dtype == np.uint8
        for key in ("lbls", "scls"):
            assert z[key].shape == (3, 48, 3, 2) and z[key].dtype == np.int64
        assert z["psts"].shape == (3, 48, 3, 2, 2) and z["psts"].dtype == np.int64
        assert z["metadata"].shape == (6, 2) and z["metadata"].dtype.kind == "U"
        assert z["lbldata"].shape == (3,) and z["lbldata"].dtype.kind == "U"
        np.testing.assert_array_equal(z["scls"][:, :, 0, 0], np.tile(64 - np.arange(48), (3, 1)))
        np.testing.assert_array_equal(z["lbls"][0, 0], [[0, 0], [1, 1], [2, 2]])
    with np.load(tiny_stir_rgb, allow_pickle=False) as z:
        assert z["imgs"].shape == (3, 48, 3, 2, 64, 64, 3)
    assert STIRDataset(tiny_stir_rgb).num_channels == 3
    assert validate_stir_file(tiny_stir, deep=True) == (3, 2, 1)


def test_synthetic_objects_fill_their_recorded_box(tiny_stir: Path) -> None:
    with np.load(tiny_stir) as z:
        imgs, scls, psts = z["imgs"], z["scls"], z["psts"]
    for idx in np.ndindex(*scls.shape):
        img, size, (x, y) = imgs[idx], scls[idx], psts[idx]
        assert 0 <= x <= 64 - size and 0 <= y <= 64 - size
        rows, cols = np.nonzero(img)
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (
            y,
            y + size - 1,
            x,
            x + size - 1,
        )


def test_synthetic_is_deterministic_and_classes_differ(tmp_path: Path) -> None:
    a = write_synthetic_stir(tmp_path / "a.npz", num_classes=12, num_instances=1, seed=5)
    b = write_synthetic_stir(tmp_path / "b.npz", num_classes=12, num_instances=1, seed=5)
    c = write_synthetic_stir(tmp_path / "c.npz", num_classes=12, num_instances=1, seed=6)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz", "c.npz"]
    with np.load(a) as z:
        at64 = z["imgs"][0, 0, :, 0]  # size 64 fills the whole image: compare shapes
    flat = at64.reshape(12, -1)
    assert len({row.tobytes() for row in flat}) == 12


def test_synthetic_unlearnable_and_bad_arguments(tmp_path: Path) -> None:
    path = write_synthetic_stir(tmp_path / "u.npz", learnable=False)
    assert STIRDataset(path).num_classes == 3
    with pytest.raises(ValueError):
        write_synthetic_stir(tmp_path / "x.npz", channels=2)
    with pytest.raises(ValueError):
        write_synthetic_stir(tmp_path / "x.npz", num_classes=0)
