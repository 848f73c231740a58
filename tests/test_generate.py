"""Offline regeneration of emoji.npz from the Font Awesome Free face icons."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("resvg_py")
pytest.importorskip("fontawesomefree")

from scalecnn.data import STIRDataset, generate_emoji, verify_local_file
from scalecnn.data.generate import EMOJI_NAMES, emoji_svg_paths, fa6_name


@pytest.fixture(scope="module")
def emoji(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_emoji(tmp_path_factory.mktemp("emoji"), seed=42)


@pytest.fixture(scope="module")
def arrays(emoji: Path) -> dict[str, np.ndarray]:
    with np.load(emoji, allow_pickle=False) as z:
        return {key: z[key] for key in z.files}


def test_icon_files() -> None:
    paths = emoji_svg_paths()
    assert len(EMOJI_NAMES) == len(set(EMOJI_NAMES)) == 36
    assert len({p.name for p in paths}) == 36 and all(p.is_file() for p in paths)
    assert fa6_name("grin-alt") == "face-grin-wide"
    assert fa6_name("meh-rolling-eyes") == "face-rolling-eyes"
    assert fa6_name("tired") == "face-tired"


def test_shapes_dtypes_and_labels(emoji: Path, arrays: dict[str, np.ndarray]) -> None:
    assert emoji.name == "emoji.npz"
    assert arrays["imgs"].shape == (3, 48, 36, 1, 64, 64) and arrays["imgs"].dtype == np.uint8
    for key in ("lbls", "scls"):
        assert arrays[key].shape == (3, 48, 36, 1) and arrays[key].dtype == np.int64
    assert arrays["psts"].shape == (3, 48, 36, 1, 2) and arrays["psts"].dtype == np.int64
    assert arrays["metadata"].shape == (6, 2) and arrays["metadata"].dtype.kind == "U"
    assert arrays["lbldata"].tolist() == list(EMOJI_NAMES)
    np.testing.assert_array_equal(
        arrays["lbls"], np.broadcast_to(np.arange(36)[None, None, :, None], (3, 48, 36, 1))
    )
    np.testing.assert_array_equal(
        arrays["scls"], np.broadcast_to((64 - np.arange(48))[None, :, None, None], (3, 48, 36, 1))
    )
    ds = STIRDataset(emoji)
    assert (ds.num_classes, ds.num_channels) == (36, 1)
    assert list(ds.metadata) == ["title", "description", "author", "license", "version", "date"]
    assert "Font Awesome Free 6" in ds.metadata["license"]
    assert "CC BY 4.0" in ds.metadata["license"]
    assert verify_local_file(emoji, "emoji", strict=True) == emoji


def test_positions_follow_the_seeded_stream(arrays: dict[str, np.ndarray]) -> None:
    rng = np.random.RandomState(42)  # same stream as np.random.seed(42)
    expected = np.empty_like(arrays["psts"])
    for cls in range(36):
        for index, size in enumerate(range(64, 16, -1)):
            for split in range(3):
                x = rng.randint(0, 64 - size + 1)
                y = rng.randint(0, 64 - size + 1)
                expected[split, index, cls, 0] = (x, y)
    np.testing.assert_array_equal(arrays["psts"], expected)


def test_objects_lie_in_their_recorded_box(arrays: dict[str, np.ndarray]) -> None:
    imgs, scls, psts = arrays["imgs"], arrays["scls"], arrays["psts"]
    for idx in np.ndindex(*scls.shape):
        img, size, (x, y) = imgs[idx], int(scls[idx]), psts[idx]
        assert 0 <= x <= 64 - size and 0 <= y <= 64 - size
        rows, cols = np.nonzero(img)
        assert rows.size, idx
        assert rows.min() >= y and rows.max() < y + size, idx
        assert cols.min() >= x and cols.max() < x + size, idx
        height = rows.max() - rows.min() + 1
        width = cols.max() - cols.min() + 1
        assert abs(max(height, width) - size) <= 2, (idx, height, width, size)
        if EMOJI_NAMES[idx[2]] != "grin-tears":  # the only icon wider than tall
            assert abs(min(height, width) - size) <= 2, (idx, height, width, size)


def test_white_icon_on_black(arrays: dict[str, np.ndarray]) -> None:
    big = arrays["imgs"][0, 0, :, 0]  # size 64: the face fills the image
    assert (big.reshape(36, -1).max(axis=1) == 255).all()  # every icon has opaque white
    for corner in (big[:, 0, 0], big[:, 0, 63], big[:, 63, 0], big[:, 63, 63]):
        assert (corner == 0).all()  # outside the round face: black background
    assert ((big > 0) & (big < 255)).any()  # anti-aliased edges give gray levels


def test_same_seed_gives_identical_bytes(emoji: Path, tmp_path: Path, monkeypatch) -> None:
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 86_400 * 400)  # other zip dates
    again = generate_emoji(tmp_path / "again.npz", seed=42)
    assert again == tmp_path / "again.npz"
    assert again.read_bytes() == emoji.read_bytes()
    other = generate_emoji(tmp_path, seed=7)
    with np.load(other) as a, np.load(emoji) as b:
        assert not np.array_equal(a["psts"], b["psts"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.npz", "emoji.npz"]
