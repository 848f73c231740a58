"""Bases of the steerable scale-equivariant layers.

>>> from scalecnn.bases import hermite_basis
>>> hermite_basis().shape                # SESN "hermite_b": (F, S, K, K)
torch.Size([49, 4, 15, 15])

The DISCO "disco_b" basis is optimised once (:func:`disco_basis`, or
``scalecnn disco-basis --out FILE``) and saved with :func:`save_basis`.
"""

from scalecnn.bases.disco import (
    DISCO_SCALES,
    basis_equivariance_error,
    compare_bases,
    dilated_delta_basis,
    disco_basis,
    equivariance_loss,
    initial_disco_basis,
    mix_basis,
    optimise_disco_basis,
    random_basis,
)
from scalecnn.bases.files import save_basis
from scalecnn.bases.hermite import (
    hermite_basis,
    hermite_functions,
    hermite_matrix,
    hermite_polynomial,
    normalize_basis,
)

__all__ = [
    "DISCO_SCALES",
    "basis_equivariance_error",
    "compare_bases",
    "dilated_delta_basis",
    "disco_basis",
    "equivariance_loss",
    "hermite_basis",
    "hermite_functions",
    "hermite_matrix",
    "hermite_polynomial",
    "initial_disco_basis",
    "mix_basis",
    "normalize_basis",
    "optimise_disco_basis",
    "random_basis",
    "save_basis",
]
