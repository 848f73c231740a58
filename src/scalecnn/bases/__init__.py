"""Bases of the steerable scale-equivariant layers.

>>> from scalecnn.bases import hermite_basis
>>> hermite_basis().shape                # SESN "hermite_b": (F, S, K, K)
torch.Size([49, 4, 15, 15])
"""

from scalecnn.bases.hermite import (
    hermite_basis,
    hermite_functions,
    hermite_matrix,
    hermite_polynomial,
    normalize_basis,
)

__all__ = [
    "hermite_basis",
    "hermite_functions",
    "hermite_matrix",
    "hermite_polynomial",
    "normalize_basis",
]
