"""Regenerate ``emoji.npz`` offline from the Font Awesome Free face icons.

Recipe (study spec): for each of the 36 icons in label order, for each size
64, 63, ..., 17, for each split (train, valid, test): render the SVG to a
``size × size`` RGBA image, draw the top-left position x then y uniformly in
``[0, 64 - size]`` from one ``numpy.random.seed(seed)`` stream consumed in
exactly this loop order, paste the alpha mask at that position into a 64×64
canvas, composite a white icon on black and convert to grayscale. For a white
icon on black the gray value equals the alpha value, which is what is stored.

The icons come from the ``fontawesomefree`` package (Font Awesome 6, where the
FA5 names of the paper were renamed to ``face-*``) and are rendered with
``resvg_py``; the result has the published file's format and semantics but not
its bytes.
"""

from __future__ import annotations

import io
import logging
import os
import re
import time
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

from scalecnn.data.stir_format import SPLITS, write_stir_npz
from scalecnn.study import IMAGE_SIZE, MAX_SIZE, MIN_SIZE

log = logging.getLogger(__name__)

#: The 36 icons in label order, by their Font Awesome 5 names (as in the paper).
EMOJI_NAMES: tuple[str, ...] = (
    "tired", "surprise", "smile-wink", "smile-beam", "sad-tear", "sad-cry",
    "meh-rolling-eyes", "meh-blank", "laugh-wink", "laugh-squint", "laugh-beam", "laugh",
    "kiss-wink-heart", "kiss-beam", "kiss", "grin-wink", "grin-tongue-wink",
    "grin-tongue-squint", "grin-tongue", "grin-tears", "grin-stars", "grin-squint-tears",
    "grin-squint", "grin-hearts", "grin-beam-sweat", "grin-beam", "grin-alt", "grin",
    "grimace", "frown-open", "flushed", "dizzy", "angry", "smile", "meh", "frown",
)  # fmt: skip

#: Font Awesome 6 renames that do not follow ``name -> face-name``.
_IRREGULAR_FA6_NAMES = {
    "grin-alt": "face-grin-wide",
    "meh-rolling-eyes": "face-rolling-eyes",
}

#: Fixed ``date`` metadata (the date of this recipe version), so that the same
#: seed always gives a byte-identical file.
RECIPE_DATE = "2025-01-01"


def fa6_name(fa5_name: str) -> str:
    """Font Awesome 6 file stem of a Font Awesome 5 face icon name."""
    return _IRREGULAR_FA6_NAMES.get(fa5_name, f"face-{fa5_name}")


def fontawesome_svg_dir() -> Path:
    """The ``svgs/regular`` folder of the installed ``fontawesomefree`` package."""
    try:
        import fontawesomefree
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "generating emoji.npz needs the 'fontawesomefree' package: "
            "pip install 'scalecnn[generate]'"
        ) from exc
    root = Path(fontawesomefree.__file__).parent
    preferred = root / "static" / "fontawesomefree" / "svgs" / "regular"
    if (preferred / "face-tired.svg").is_file():
        return preferred
    for candidate in sorted(root.rglob("svgs/regular/face-tired.svg")):
        return candidate.parent
    raise FileNotFoundError(f"no svgs/regular/face-*.svg files found under {root}")


def emoji_svg_paths() -> list[Path]:
    """The 36 SVG files in label order; raises if any is missing."""
    folder = fontawesome_svg_dir()
    paths = [folder / f"{fa6_name(n)}.svg" for n in EMOJI_NAMES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"Font Awesome icons missing: {missing}")
    return paths


def _square_svg(svg: str) -> str:
    """Widen the shorter side of the viewBox symmetrically to make it square.

    Rendering the squared SVG to ``size × size`` equals SVG's default
    ``xMidYMid meet`` fit of the original (one icon, face-grin-tears, is 640×512).
    """
    match = re.search(r'viewBox="([^"]+)"', svg)
    if match is None:
        raise ValueError("SVG without a viewBox")
    x0, y0, w, h = (float(v) for v in match.group(1).replace(",", " ").split())
    if w == h:
        return svg
    side = max(w, h)
    x0 -= (side - w) / 2
    y0 -= (side - h) / 2
    box = f'viewBox="{x0:g} {y0:g} {side:g} {side:g}"'
    return svg[: match.start()] + box + svg[match.end() :]


def render_alpha(svg: str, size: int) -> np.ndarray:
    """Render SVG markup to ``size × size`` RGBA and return its alpha, uint8 ``(size, size)``."""
    import resvg_py
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_string=_square_svg(svg), width=size, height=size)
    with Image.open(io.BytesIO(bytes(png))) as im:
        rgba = np.asarray(im.convert("RGBA"))
    if rgba.shape[:2] != (size, size):  # pragma: no cover - guarded by _square_svg
        raise RuntimeError(f"renderer returned {rgba.shape[:2]}, expected {(size, size)}")
    return rgba[..., 3].copy()


def _versions() -> tuple[str, str]:
    try:
        fa = importlib_metadata.version("fontawesomefree")
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover
        fa = "unknown"
    try:
        import resvg_py

        rv = f"resvg_py {getattr(resvg_py, '__version__', '?')} "
        rv += f"(resvg {getattr(resvg_py, '__resvg_version__', '?')})"
    except ImportError:  # pragma: no cover
        rv = "resvg_py"
    return fa, rv


def generate_emoji(dest_dir_or_file: str | os.PathLike, seed: int = 42) -> Path:
    """Build ``emoji.npz`` per the study's recipe and write it atomically.

    ``dest_dir_or_file``: a ``.npz`` path, or a folder that receives
    ``emoji.npz``. Returns the written path.

    Arrays (n = 36 classes, m = 1 instance): ``imgs`` uint8
    ``(3, 48, 36, 1, 64, 64)`` white icon on black; ``lbls``, ``scls`` int64
    ``(3, 48, 36, 1)``; ``psts`` int64 ``(3, 48, 36, 1, 2)`` (left, top);
    ``metadata`` ``(6, 2)`` str; ``lbldata`` ``(36,)`` str (the FA5 names).
    Positions use ``numpy.random.RandomState(seed)``, the same stream as
    ``numpy.random.seed(seed)`` followed by ``numpy.random.randint`` (the
    global state is left alone). The same seed gives a byte-identical file.
    """
    dest = Path(dest_dir_or_file)
    path = dest if dest.suffix == ".npz" else dest / "emoji.npz"
    start = time.perf_counter()
    svgs = [p.read_text(encoding="utf-8") for p in emoji_svg_paths()]
    sizes = list(range(MAX_SIZE, MIN_SIZE - 1, -1))
    n, m, num_scales = len(EMOJI_NAMES), 1, len(sizes)
    lead = (len(SPLITS), num_scales, n, m)
    imgs = np.zeros((*lead, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    lbls = np.empty(lead, dtype=np.int64)
    scls = np.empty(lead, dtype=np.int64)
    psts = np.empty((*lead, 2), dtype=np.int64)

    rng = np.random.RandomState(seed)
    for cls, svg in enumerate(svgs):
        for scale_index, size in enumerate(sizes):
            alpha = render_alpha(svg, size)  # rendered once, used by all three splits
            for split in range(len(SPLITS)):
                x = rng.randint(0, IMAGE_SIZE - size + 1)
                y = rng.randint(0, IMAGE_SIZE - size + 1)
                imgs[split, scale_index, cls, 0, y : y + size, x : x + size] = alpha
                lbls[split, scale_index, cls, 0] = cls
                scls[split, scale_index, cls, 0] = size
                psts[split, scale_index, cls, 0] = (x, y)

    fa_version, renderer = _versions()
    from scalecnn import __version__

    metadata = np.array(
        [
            ["title", "STIR Emoji (regenerated)"],
            [
                "description",
                "Scaled and Translated Image Recognition (STIR), emoji: 36 Font Awesome "
                "regular face icons, white on black, sizes 17-64 px at random positions in "
                "64x64 images; splits train/valid/test. Regenerated offline by scalecnn "
                f"{__version__} with the recipe of Altstidl et al. (arXiv 2211.10288), "
                f"rendered with {renderer}, seed {seed}; same format as Zenodo record "
                "6578038, not byte-identical to it.",
            ],
            ["author", "Recipe: Altstidl et al. (arXiv 2211.10288); regenerated by scalecnn"],
            [
                "license",
                f"Icons: Font Awesome Free {fa_version} by Fonticons, Inc., CC BY 4.0 "
                "(https://fontawesome.com/license/free)",
            ],
            ["version", f"regenerated-{__version__}"],
            ["date", RECIPE_DATE],
        ],
        dtype=str,
    )
    write_stir_npz(
        path,
        {
            "imgs": imgs,
            "lbls": lbls,
            "scls": scls,
            "psts": psts,
            "metadata": metadata,
            "lbldata": np.array(EMOJI_NAMES, dtype=str),
        },
    )
    log.info("wrote %s in %.1f s", path, time.perf_counter() - start)
    return path
