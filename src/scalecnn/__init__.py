"""scalecnn: scale-equivariance study on STIR (Altstidl et al., arXiv 2211.10288).

Subpackages:
    data       STIR loader, downloader and emoji generator
    layers     kernel interpolation, SiConv2d, ScalePool and the baseline layers
    bases      Hermite and DISCO steerable bases
    models     the eleven models behind one registry
    plots      one module per figure family
"""

__version__ = "1.0.0"  # = pyproject.toml's version and CITATION.cff's (tests/test_docs.py)
