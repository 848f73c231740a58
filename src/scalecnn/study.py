"""Names fixed by the paper's study (no heavy imports: safe for plotting and the CLI)."""

PAPER_MODELS: tuple[str, ...] = (
    "standard",
    "pixel_pool",
    "slice_pool",
    "energy_pool",
    "conv3d",
    "ensemble",
    "spatial_transform",
    "xu",
    "kanazawa",
    "hermite",
    "disco",
)
"""The eleven models in the paper's order."""

DATASET_NAMES: tuple[str, ...] = ("emoji", "mnist", "trafficsign", "aerial")
"""The four STIR files of Zenodo record 6578038."""
