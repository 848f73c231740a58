"""One registry for every model of the benchmark, including users' own.

This module imports no model: each model module registers its models when it
is imported, and :mod:`scalecnn.models` (whose ``__init__`` runs before any of
its submodules, this one included) imports every model module of the package.

A model is registered under a name with a factory that accepts the common
keyword arguments ``kernel_size``, ``interpolation``, ``num_channels`` and
``num_classes`` (plus optional extras such as ``basis``, or ``method`` for the
models with FFT fast paths, which the others ignore) and returns a module
mapping ``(B, num_channels, 64, 64)`` to logits ``(B, num_classes)``::

    from scalecnn.models.registry import register_model

    @register_model("my_model")
    def my_model(kernel_size, interpolation, num_channels, num_classes, **extra):
        return MyNet(...)

Adding a model to the package takes one new module and one line:

1. ``src/scalecnn/models/my_model.py`` defines the network and one decorated
   factory per model name, as above (import ``register_model`` from
   ``scalecnn.models.registry``, never from ``scalecnn.models``: that would be
   an import cycle);
2. ``src/scalecnn/models/__init__.py`` names ``my_model`` in its import of the
   model modules.

:func:`list_models` gives the paper's eleven models
(:data:`scalecnn.study.PAPER_MODELS`) in the paper's order, the two newer
built-in models (:data:`scalecnn.study.NEW_MODELS`), then every other
registered model in the order it was registered.

Users register models without editing the package: put the decorated
function in a module (importing ``register_model`` from ``scalecnn.models``)
and name that module (an importable name or a ``.py`` path) in the workflow
config's ``plugins`` list or in ``scalecnn train --plugin``; :func:`load_plugins`
imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from scalecnn.layers.fastpath import check_conv_method
from scalecnn.study import STUDY_MODELS

ModelFactory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its factory and what the evaluation may ask of it."""

    name: str
    factory: ModelFactory
    traced: bool = False
    """Exposes stage-1/stage-2 feature maps (``feature_maps``) for the equivariance error."""
    scale_pools: bool = False
    """Has ``pool1``/``pool2`` ScalePool layers whose indices the index figure reads."""
    needs_basis: bool = False
    """Needs a steerable basis tensor passed as ``basis=``."""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    traced: bool = False,
    scale_pools: bool = False,
    needs_basis: bool = False,
    replace: bool = False,
) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering ``factory`` under ``name``; returns ``factory`` unchanged.

    Raises ``ValueError`` if ``name`` is taken, unless ``replace=True``.
    """

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY and not replace:
            raise ValueError(f"a model named {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(name, factory, traced, scale_pools, needs_basis)
        return factory

    return decorator


def unregister_model(name: str) -> None:
    """Remove a registered model (mainly for tests)."""
    _REGISTRY.pop(name, None)


def list_models() -> list[str]:
    """Names of all registered models: the paper's eleven in the paper's order, the new
    built-in ones (:data:`scalecnn.study.NEW_MODELS`), then others (plugins) in the order
    they were registered."""
    known = [m for m in STUDY_MODELS if m in _REGISTRY]
    return known + [m for m in _REGISTRY if m not in STUDY_MODELS]


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; ``ValueError`` naming the known models otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; registered models: {', '.join(_REGISTRY)}"
        ) from None


def build_model(
    name: str,
    kernel_size: int = 7,
    interpolation: str = "bicubic",
    num_channels: int = 1,
    num_classes: int = 36,
    method: str | None = None,
    **extra: object,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: registry name (see :func:`list_models`).
        kernel_size: base kernel size ``k`` (paper: 7).
        interpolation: kernel interpolation of the SiConv2d models (paper: bicubic).
        num_channels: input channels (1 gray, 3 colour).
        num_classes: number of output logits.
        method: ``auto``, ``direct`` or ``fft``
            (:data:`~scalecnn.layers.fastpath.CONV_METHODS`): how the layers with an FFT
            path compute (SiConv2d of pixel_pool, slice_pool, energy_pool and conv3d,
            conv3d's Conv3d, Xu's columns, the steerable layers of hermite and disco);
            models without such layers ignore it. ``None`` (default): passed on only
            when given, so the factories' own default (``auto``) holds.
        **extra: model-specific options, e.g. ``basis`` for ``disco``.

    Returns:
        A module mapping ``(B, num_channels, 64, 64)`` to logits ``(B, num_classes)``.
    """
    spec = get_spec(name)
    if method is not None:
        extra["method"] = check_conv_method(method)
    return spec.factory(
        kernel_size=kernel_size,
        interpolation=interpolation,
        num_channels=num_channels,
        num_classes=num_classes,
        **extra,
    )


def load_plugins(plugins: Iterable[str]) -> None:
    """Import user modules that register models: importable names or ``.py`` paths."""
    for plugin in plugins:
        path = Path(plugin)
        if plugin.endswith(".py"):
            if not path.is_file():
                raise FileNotFoundError(f"model plugin file not found: {plugin}")
            mod_name = f"scalecnn_plugin_{path.stem}"
            if mod_name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import model plugin {plugin}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(plugin)
