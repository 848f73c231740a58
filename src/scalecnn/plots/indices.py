"""Which kernel scale the scale pooling picked: Fig. 7 (slice_pool) and Suppl. Fig. 4 (pixel_pool).

Input: the arrays of one run's ``indices.npz`` (``np.load(path)`` or any
mapping): ``pool1``/``pool2`` chosen scale indices (slice/energy pooling
``(N, C)``, pixel pooling ``(N, C, H, W)``), ``sizes (N,)``, ``labels (N,)``
and ``kernel_size``. Index ``i`` means kernel size ``kernel_size + 2 i``.
The paper uses the emoji Mid2Rest run with the highest test accuracy of each
model; the workflow chooses it with :func:`scalecnn.aggregate.best_run`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from scalecnn.plots import style

FIG7_LABEL = 33
"""Emoji class 33 ("smile") as in the paper."""
SUPPL4_SIZES: tuple[int, ...] = (17, 33, 48, 64)


def _arrays(indices: Mapping[str, np.ndarray], stage: int, kernel_size: int | None, what: str):
    if stage not in (1, 2):
        raise ValueError(f"{what}: stage must be 1 or 2, got {stage!r}")
    key = f"pool{stage}"
    missing = [k for k in (key, "sizes", "labels") if k not in indices]
    if missing:
        raise ValueError(f"{what}: indices lack {missing}; present: {sorted(indices)}")
    pool = np.asarray(indices[key])
    sizes = np.asarray(indices["sizes"]).astype(int).ravel()
    labels = np.asarray(indices["labels"]).astype(int).ravel()
    if pool.shape[0] == 0 or sizes.size == 0:
        raise ValueError(f"{what}: the indices are empty ({key} shape {pool.shape})")
    if not (pool.shape[0] == sizes.size == labels.size):
        raise ValueError(
            f"{what}: {key} has {pool.shape[0]} rows, sizes {sizes.size}, "
            f"labels {labels.size}; they must agree"
        )
    if kernel_size is None:
        kernel_size = int(np.asarray(indices["kernel_size"])) if "kernel_size" in indices else 7
    return pool, sizes, labels, int(kernel_size)


def _rows_for_label(
    sizes: np.ndarray, labels: np.ndarray, label: int, instance: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers (one per object size, ascending) of ``instance`` of class ``label``."""
    hit = np.flatnonzero(labels == label)
    if hit.size == 0:
        raise ValueError(
            f"{what}: no test image with label {label}; labels present "
            f"{int(labels.min())}..{int(labels.max())}"
        )
    rows, obj_sizes = [], []
    for s in np.unique(sizes[hit]):
        same = hit[sizes[hit] == s]
        if instance < same.size:
            rows.append(same[instance])
            obj_sizes.append(s)
    if not rows:
        raise ValueError(f"{what}: label {label} has no instance {instance} at any size")
    return np.array(rows), np.array(obj_sizes)


def _kernel_cmap(kernel_size: int, max_index: int) -> tuple[ListedColormap, BoundaryNorm, list]:
    n = max(int(max_index), 1) + 1
    ksizes = [kernel_size + 2 * i for i in range(n)]
    base = colormaps["viridis"]
    cmap = ListedColormap([base(x) for x in np.linspace(0.0, 0.95, n)])
    bounds = [k - 1 for k in ksizes] + [ksizes[-1] + 1]
    return cmap, BoundaryNorm(bounds, n), ksizes


def _colorbar_ticks(ksizes: list[int]) -> list[int]:
    step = max(1, int(np.ceil(len(ksizes) / 8)))
    return ksizes[::step]


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of ``x`` and ``y``; NaN when either is constant."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.size < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def slice_index_correlation(
    indices: Mapping[str, np.ndarray],
    *,
    stage: int = 2,
    label: int = FIG7_LABEL,
    instance: int = 0,
    kernel_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object sizes ``(S,)``, chosen kernel sizes ``(S, C)`` and Pearson r per channel ``(C,)``."""
    obj_sizes, kernels, r, _ = _slice_data(indices, stage, label, instance, kernel_size)
    return obj_sizes, kernels, r


def _slice_data(indices, stage, label, instance, kernel_size):
    what = "Fig. 7"
    pool, sizes, labels, k = _arrays(indices, stage, kernel_size, what)
    if pool.ndim != 2:
        raise ValueError(
            f"{what}: expected slice/energy pooling indices of shape (N, C); got "
            f"{pool.shape} (pixel pooling: use plot_pixel_indices)"
        )
    rows, obj_sizes = _rows_for_label(sizes, labels, label, instance, what)
    kernels = k + 2 * pool[rows].astype(int)
    r = np.array([pearson_r(obj_sizes, kernels[:, c]) for c in range(kernels.shape[1])])
    return obj_sizes, kernels, r, k


def plot_slice_indices(
    indices: Mapping[str, np.ndarray],
    *,
    stage: int = 2,
    label: int = FIG7_LABEL,
    instance: int = 0,
    kernel_size: int | None = None,
    title: str | None = None,
) -> Figure:
    """Fig. 7: per output channel, the kernel size slice pooling chose at each object size.

    One row of coloured dots per channel (one scatter collection per channel),
    rows sorted by the Pearson r between object size and kernel size (highest
    at the top; constant channels, r undefined, at the bottom).
    """
    obj_sizes, kernels, r, k = _slice_data(indices, stage, label, instance, kernel_size)
    max_index = int((kernels.max() - k) // 2)
    cmap, norm, ksizes = _kernel_cmap(k, max_index)
    sort_key = np.where(np.isnan(r), -np.inf, r)
    order = np.argsort(sort_key, kind="stable")  # ascending: row 0 (bottom) lowest r
    n_ch = kernels.shape[1]

    with style.style_context():
        fig = Figure(figsize=(4.2, 1.2 + 0.13 * n_ch), layout="constrained")
        ax = fig.subplots()
        for row, ch in enumerate(order):
            ax.scatter(
                obj_sizes,
                np.full(obj_sizes.size, row),
                c=kernels[:, ch],
                cmap=cmap,
                norm=norm,
                s=7,
                linewidths=0,
                marker="s",
                zorder=3,
            )
        ax.set_yticks(range(n_ch))
        ax.set_yticklabels(
            [
                f"{ch + 1}  r={r[ch]:+.2f}" if np.isfinite(r[ch]) else f"{ch + 1}  r=n/a"
                for ch in order
            ],
            fontsize=5,
        )
        ax.set_ylim(-0.7, n_ch - 0.3)
        ax.set_xlim(obj_sizes.min() - 0.7, obj_sizes.max() + 0.7)
        ax.set_xlabel("Object size [px]")
        ax.set_ylabel("Output channel (sorted by r)")
        ax.grid(False)
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        ax.set_title(title or f"Slice pool, stage {stage}: chosen kernel size (label {label})")
        cb = fig.colorbar(
            ScalarMappable(norm=norm, cmap=cmap), ax=ax, ticks=_colorbar_ticks(ksizes)
        )
        cb.set_label("Kernel size [px]")
        cb.outline.set_visible(False)
    return fig


def plot_pixel_indices(
    indices: Mapping[str, np.ndarray],
    *,
    stage: int = 2,
    label: int = FIG7_LABEL,
    sizes: Sequence[int] = SUPPL4_SIZES,
    instance: int = 0,
    kernel_size: int | None = None,
    groups: int = 4,
) -> Figure:
    """Suppl. Fig. 4: per channel, the per-pixel kernel size pixel pooling chose, as an image,
    at the object sizes ``sizes`` (one image axes per channel and size).

    Channels are laid out in ``groups`` side-by-side blocks, each block one
    column per size. Sizes absent from the indices are left out (and named in
    the figure); ``ValueError`` if none is present.
    """
    what = "Suppl. Fig. 4"
    pool, all_sizes, labels, k = _arrays(indices, stage, kernel_size, what)
    if pool.ndim != 4:
        raise ValueError(
            f"{what}: expected pixel pooling indices of shape (N, C, H, W); got "
            f"{pool.shape} (slice pooling: use plot_slice_indices)"
        )
    rows, obj_sizes = _rows_for_label(all_sizes, labels, label, instance, what)
    wanted = [int(s) for s in sizes]
    present = [s for s in wanted if s in set(obj_sizes.tolist())]
    absent = [s for s in wanted if s not in present]
    if not present:
        raise ValueError(
            f"{what}: none of the sizes {wanted} is present for label {label}; "
            f"present: {obj_sizes.min()}..{obj_sizes.max()}"
        )
    row_of = dict(zip(obj_sizes.tolist(), rows.tolist(), strict=True))
    maps = {s: k + 2 * pool[row_of[s]].astype(int) for s in present}  # (C, H, W) each
    max_index = int((max(int(m.max()) for m in maps.values()) - k) // 2)
    cmap, norm, ksizes = _kernel_cmap(k, max_index)
    n_ch = pool.shape[1]
    n_s = len(present)
    groups = max(1, min(groups, n_ch))
    n_rows = int(np.ceil(n_ch / groups))
    width_ratios = []
    for g in range(groups):
        width_ratios += [1.0] * n_s + ([0.35] if g < groups - 1 else [])

    with style.style_context():
        cell = 0.42
        fig = Figure(figsize=(cell * sum(width_ratios) + 0.9, cell * n_rows + 1.0))
        gs = fig.add_gridspec(
            n_rows,
            len(width_ratios),
            width_ratios=width_ratios,
            left=0.04,
            right=0.88,
            top=0.93,
            bottom=0.06,
            wspace=0.08,
            hspace=0.12,
        )
        for ch in range(n_ch):
            r, g = divmod(ch, groups)
            for si, s in enumerate(present):
                ax = fig.add_subplot(gs[r, g * (n_s + 1) + si])
                ax.imshow(maps[s][ch], cmap=cmap, norm=norm, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if r == 0:
                    ax.set_title(f"{s}px", fontsize=6, pad=2)
                if si == 0:
                    ax.set_ylabel(f"ch {ch + 1}", fontsize=6, labelpad=1)
        cax = fig.add_axes((0.90, 0.25, 0.015, 0.5))
        cb = fig.colorbar(
            ScalarMappable(norm=norm, cmap=cmap), cax=cax, ticks=_colorbar_ticks(ksizes)
        )
        cb.set_label("Kernel size [px]")
        cb.outline.set_visible(False)
        head = f"Pixel pool, stage {stage}: chosen kernel size per pixel (label {label})"
        if absent:
            head += f"; sizes {absent} not in the indices"
        fig.suptitle(head, fontsize=8)
    return fig
