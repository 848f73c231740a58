"""The DISCO "disco_b" basis (Sosnovik, Moskalev & Smeulders, BMVC 2021).

* :mod:`~scalecnn.bases.disco.basis` — the maths: dilated deltas, the pairwise
  equivariance relation and its loss, the Hermite mixing;
* :mod:`~scalecnn.bases.disco.fit` — optimising the raw basis on noise images;
* :mod:`~scalecnn.bases.disco.compare` — equivariance errors against other bases;
* :mod:`~scalecnn.bases.disco.job` — the ``scalecnn disco-basis`` job (files, report).

See ``docs/disco_basis.md``.
"""

from scalecnn.bases.disco.basis import (
    DISCO_SCALES,
    EFFECTIVE_SIZE,
    HERMITE_MAX_ORDER,
    HERMITE_MIN_SCALE,
    HERMITE_MULT,
    KERNEL_SIZE,
    circular_conv,
    dilated_delta_basis,
    downscale,
    equivariance_loss,
    is_integer_scale,
    mix_basis,
    noise_images,
    pair_maps,
    random_basis,
)
from scalecnn.bases.disco.compare import (
    HERMITE_B_MULT,
    VALIDATION_SEED,
    basis_equivariance_error,
    compare_bases,
)
from scalecnn.bases.disco.fit import (
    LR_GAMMA,
    PAPER_BATCH_SIZE,
    PAPER_EPOCHS,
    PAPER_IMAGE_SIZE,
    PAPER_LR,
    PAPER_STEPS_PER_EPOCH,
    QUICK_SETTINGS,
    ProgressFn,
    disco_basis,
    initial_disco_basis,
    optimise_disco_basis,
)
from scalecnn.bases.disco.job import write_disco_basis

__all__ = [
    "DISCO_SCALES",
    "EFFECTIVE_SIZE",
    "HERMITE_B_MULT",
    "HERMITE_MAX_ORDER",
    "HERMITE_MIN_SCALE",
    "HERMITE_MULT",
    "KERNEL_SIZE",
    "LR_GAMMA",
    "PAPER_BATCH_SIZE",
    "PAPER_EPOCHS",
    "PAPER_IMAGE_SIZE",
    "PAPER_LR",
    "PAPER_STEPS_PER_EPOCH",
    "QUICK_SETTINGS",
    "VALIDATION_SEED",
    "ProgressFn",
    "basis_equivariance_error",
    "circular_conv",
    "compare_bases",
    "dilated_delta_basis",
    "disco_basis",
    "downscale",
    "equivariance_loss",
    "initial_disco_basis",
    "is_integer_scale",
    "mix_basis",
    "noise_images",
    "optimise_disco_basis",
    "pair_maps",
    "random_basis",
    "write_disco_basis",
]
