"""The switchboard of the fast paths (scalecnn.layers.fastpath): every switch forced on and
off takes its path (spies count the calls) and gives the direct definition's results."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import scalecnn.layers.fft as fft_package
import scalecnn.layers.fft.conv as conv_module
import scalecnn.layers.fft.direct as direct_module
import scalecnn.layers.fft.pool as pool_module
import scalecnn.layers.fft.sparse_grad as sparse_grad
from scalecnn.layers import ScalePool, SiConv2d, expected_num_scales, fastpath, siconv_scale_pool
from scalecnn.layers.fastpath import KINDS, MODES, set_fastpath
from scalecnn.layers.fft import AutoConv3d, conv_nd, direct_conv, fft_conv, fuses_by_default
from scalecnn.layers.fft.conv import auto_method
from scalecnn.layers.fft.cost import fft_is_faster
from scalecnn.layers.fft.direct import nnpack_is_faster
from scalecnn.layers.fft.plan import ConvConfig
from scalecnn.layers.fft.pool_sparse import use_sparse_pool_backward
from scalecnn.layers.fft.sparse_grad import use_sparse_backward
from scalecnn.models import build_model

NNPACK = direct_module._nnpack_ready()
DOUBLE = torch.float64


@pytest.fixture(autouse=True)
def clean_switchboard(monkeypatch):
    """Every switch unset (``auto``) before each test; the settings restored after."""
    for kind in KINDS:
        monkeypatch.delenv(fastpath.env_variable(kind), raising=False)
    saved = dict(fastpath._OVERRIDES)
    fastpath._OVERRIDES.clear()
    yield
    fastpath._OVERRIDES.clear()
    fastpath._OVERRIDES.update(saved)


def spy(monkeypatch, module, name) -> list[int]:
    """Replace ``module.name`` by a wrapper that counts its calls."""
    calls: list[int] = []
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def leaves(*shapes, dtype=DOUBLE, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in shapes]


def grads_of(y, wrt, g):
    return torch.autograd.grad(y, wrt, g, retain_graph=True)


def assert_all_close(got, expected, **tol):
    for a, e in zip(got, expected, strict=True):
        torch.testing.assert_close(a, e, **tol)


# ---------------------------------------------------------------- the API


def test_every_switch_defaults_to_auto():
    assert KINDS == (
        "siconv_fft",
        "fused_pool",
        "conv_fft",
        "nnpack",
        "sparse_backward",
        "sparse_pool_backward",
    )
    assert MODES == ("auto", "on", "off")
    assert fastpath.modes() == dict.fromkeys(KINDS, "auto")


def test_bad_kinds_and_modes_raise_naming_the_allowed_ones():
    with pytest.raises(ValueError, match=r"'winograd'.*siconv_fft.*sparse_pool_backward"):
        set_fastpath("winograd", "on")
    with pytest.raises(ValueError, match=r"'fast'.*'auto', 'on', 'off'"):
        set_fastpath("nnpack", "fast")
    with pytest.raises(ValueError, match="'winograd'"):
        fastpath.mode("winograd")
    bad = fastpath.fastpath(nnpack="off", conv_fft="maybe")
    with pytest.raises(ValueError, match=r"'maybe'.*'auto', 'on', 'off'"), bad:
        pass
    assert fastpath.modes()["nnpack"] == "auto"  # checked before anything changed
    with pytest.raises(ValueError, match="'winograd'"), fastpath.fastpath(winograd="on"):
        pass


def test_the_environment_variable_is_read_at_every_choice(monkeypatch):
    assert fastpath.env_variable("siconv_fft") == "SCALECNN_FASTPATH_SICONV_FFT"
    layer = SiConv2d(16, 32, 26, 7)
    x = torch.empty(16, 16, 58, 58)
    assert layer.resolved_method(x) == "fft"
    monkeypatch.setenv("SCALECNN_FASTPATH_SICONV_FFT", " OFF ")
    assert fastpath.mode("siconv_fft") == "off"
    assert layer.resolved_method(x) == "direct"
    with fastpath.fastpath(siconv_fft="on"):  # a setting beats the environment
        assert layer.resolved_method(x) == "fft"
    assert layer.resolved_method(x) == "direct"
    monkeypatch.setenv("SCALECNN_FASTPATH_SICONV_FFT", "sometimes")
    with pytest.raises(ValueError, match="'sometimes'.*SCALECNN_FASTPATH_SICONV_FFT"):
        layer.resolved_method(x)


def test_set_fastpath_and_none_clears_it(monkeypatch):
    monkeypatch.setenv("SCALECNN_FASTPATH_NNPACK", "on")
    set_fastpath("nnpack", "off")
    assert fastpath.mode("nnpack") == "off"
    set_fastpath("nnpack", None)  # the environment decides again
    assert fastpath.mode("nnpack") == "on"


def test_the_context_manager_restores_on_exit_and_on_exceptions():
    set_fastpath("conv_fft", "on")
    with fastpath.fastpath(conv_fft="off", nnpack="off"):
        assert fastpath.mode("conv_fft") == "off" and fastpath.mode("nnpack") == "off"
        with fastpath.fastpath(nnpack="on"):
            assert fastpath.mode("nnpack") == "on"
        assert fastpath.mode("nnpack") == "off"
    assert fastpath.mode("conv_fft") == "on" and fastpath.mode("nnpack") == "auto"
    assert "nnpack" not in fastpath._OVERRIDES
    with pytest.raises(RuntimeError, match="boom"), fastpath.fastpath(sparse_backward="off"):
        raise RuntimeError("boom")
    assert fastpath.modes()["sparse_backward"] == "auto"


def test_one_list_of_convolution_methods():
    assert fft_package.CONV_METHODS is fastpath.CONV_METHODS == ("auto", "direct", "fft")
    for make in (lambda: SiConv2d(1, 1, 1, 3, method="x"), lambda: AutoConv3d(1, 1, 3, method="x")):
        with pytest.raises(ValueError, match=r"'auto', 'direct', 'fft'.*'x'"):
            make()


# ---------------------------------------------------------------- siconv_fft


def test_siconv_fft_on_and_off(monkeypatch):
    torch.manual_seed(0)
    layer = SiConv2d(2, 3, expected_num_scales(11, 11, 3), 3, interp_mode="bicubic").double()
    (x,) = leaves((2, 2, 11, 11))
    wrt = (x, layer.weights, layer.bias)
    expected = layer.forward_direct(x)
    g = torch.randn_like(expected)
    expected_grads = grads_of(expected, wrt, g)
    fft_calls = spy(monkeypatch, fft_package, "siconv2d_fft")
    direct_calls = spy(monkeypatch, SiConv2d, "forward_direct")
    for switch, path in (("on", fft_calls), ("off", direct_calls)):
        with fastpath.fastpath(siconv_fft=switch):
            y = layer(x)
        assert len(path) == 1 and len(fft_calls) + len(direct_calls) == 1
        torch.testing.assert_close(y, expected)
        assert_all_close(grads_of(y, wrt, g), expected_grads)
        fft_calls.clear()
        direct_calls.clear()


def test_siconv_fft_leaves_forced_layers_and_strides_alone():
    x = torch.empty(1, 2, 13, 13)
    with fastpath.fastpath(siconv_fft="off"):
        assert SiConv2d(2, 3, 6, 3, method="fft").resolved_method(x) == "fft"
    with fastpath.fastpath(siconv_fft="on"):
        assert SiConv2d(2, 3, 6, 3, method="direct").resolved_method(x) == "direct"
        assert SiConv2d(2, 3, 6, 3, stride=2).resolved_method(x) == "direct"  # not applicable


# ---------------------------------------------------------------- fused_pool


def test_fused_pool_on_and_off(monkeypatch):
    torch.manual_seed(1)
    conv = SiConv2d(2, 3, expected_num_scales(11, 12, 3), 3, method="fft").double()
    (x,) = leaves((2, 2, 11, 12))
    wrt = (x, conv.weights, conv.bias)
    pool = ScalePool("pixel")
    expected = pool(conv.forward_direct(x))
    g = torch.randn_like(expected)
    expected_grads = grads_of(expected, wrt, g)
    fused = spy(monkeypatch, pool_module, "pooled_forward")
    for switch, calls in (("on", 1), ("off", 0)):
        with fastpath.fastpath(fused_pool=switch):
            y = siconv_scale_pool(conv, pool, x)
        assert len(fused) == calls
        torch.testing.assert_close(y, expected)
        assert_all_close(grads_of(y, wrt, g), expected_grads)
        fused.clear()
    assert fuses_by_default("cpu") and not fuses_by_default("cuda")
    with fastpath.fastpath(fused_pool="on"):
        assert fuses_by_default("cuda")
    with fastpath.fastpath(fused_pool="off"):
        assert not fuses_by_default("cpu")
        siconv_scale_pool(conv, pool, x, fuse=True)  # an explicit fuse wins
    assert len(fused) == 1


# ---------------------------------------------------------------- conv_fft


@pytest.mark.parametrize(
    "xshape, wshape, padding, groups",
    [((2, 4, 9, 10), (6, 2, 3, 3), 1, 2), ((2, 4, 5, 6, 7), (3, 4, 3, 3, 3), (1, 0, 2), 1)],
)
def test_conv_fft_on_and_off(xshape, wshape, padding, groups, monkeypatch):
    x, w, b = leaves(xshape, wshape, wshape[:1])
    plain = F.conv3d if len(xshape) == 5 else F.conv2d
    expected = plain(x, w, b, padding=padding, groups=groups)
    g = torch.randn_like(expected)
    expected_grads = grads_of(expected, (x, w, b), g)
    by_fft = spy(monkeypatch, conv_module, "fft_conv")
    by_direct = spy(monkeypatch, conv_module, "direct_conv")
    for switch, path in (("on", by_fft), ("off", by_direct)):
        with fastpath.fastpath(conv_fft=switch):
            y = conv_nd(x, w, b, padding, groups)
        assert len(path) == 1 and len(by_fft) + len(by_direct) == 1
        torch.testing.assert_close(y, expected)
        assert_all_close(grads_of(y, (x, w, b), g), expected_grads)
        by_fft.clear()
        by_direct.clear()


def test_conv_fft_reaches_the_layers_with_method_auto(monkeypatch):
    by_fft = spy(monkeypatch, conv_module, "fft_conv")
    layer = AutoConv3d(2, 3, 3).double()
    x = torch.randn(1, 2, 5, 5, 5, dtype=DOUBLE)
    with fastpath.fastpath(conv_fft="on"):
        torch.testing.assert_close(layer(x), F.conv3d(x, layer.weight, layer.bias))
    assert by_fft == [1]
    big = torch.zeros(4, 16, 11, 11)  # auto: by FFT on the CPU
    assert fft_is_faster(torch.zeros(1, 16, 20, 20), big)
    with fastpath.fastpath(conv_fft="off"):
        assert auto_method(torch.zeros(1, 16, 20, 20, dtype=DOUBLE), big.double()) == "direct"


# ---------------------------------------------------------------- nnpack


def test_nnpack_on_and_off(monkeypatch):
    """NNPACK is float32 only: its results equal F.conv2d's to float32 rounding."""
    x, w, b = leaves((2, 3, 10, 9), (4, 3, 3, 3), (4,), dtype=torch.float32)
    expected = F.conv2d(x, w, b, padding=1)
    g = torch.randn_like(expected)
    expected_grads = grads_of(expected, (x, w, b), g)
    calls = spy(monkeypatch, direct_module, "_nnpack_conv")
    assert not nnpack_is_faster(x, w)  # 3×3: oneDNN under auto
    for switch, count in (("on", int(NNPACK)), ("off", 0)):
        with fastpath.fastpath(nnpack=switch):
            y = direct_conv(x, w, b, 1)
        assert len(calls) == count
        torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4)
        assert_all_close(grads_of(y, (x, w, b), g), expected_grads, rtol=1e-4, atol=1e-4)
        calls.clear()
    with fastpath.fastpath(nnpack="on"):  # not applicable: float64, groups
        direct_conv(x.double(), w.double())
        direct_conv(torch.randn(1, 4, 8, 8), torch.randn(4, 2, 3, 3), groups=2)
    assert calls == []


def test_nnpack_off_hands_the_mid_sized_kernels_back_to_the_fft(monkeypatch):
    monkeypatch.setattr(direct_module, "_cpu_capability", lambda: "AVX2")
    x, w = torch.zeros(1, 16, 20, 20), torch.zeros(8, 16, 11, 11)
    assert auto_method(x, w) == ("direct" if NNPACK else "fft")  # NNPACK beats the FFT
    with fastpath.fastpath(nnpack="off"):
        assert auto_method(x, w) == "fft"


# ---------------------------------------------------------------- sparse_backward


@pytest.mark.parametrize("conv", [direct_conv, fft_conv])
def test_sparse_backward_on_and_off(conv, monkeypatch):
    x, w, b = leaves((2, 3, 9, 8), (4, 3, 3, 3), (4,))
    expected = F.conv2d(x, w, b, padding=1)
    calls = spy(monkeypatch, sparse_grad, "sparse_conv_grads")
    for name, g in (("dense", torch.randn_like(expected)), ("sparse", torch.zeros_like(expected))):
        g[0, 1, 2, 3] = 1.5
        expected_grads = grads_of(expected, (x, w, b), g)
        for switch, count in (("on", 1), ("off", 0)):
            with fastpath.fastpath(sparse_backward=switch):
                y = conv(x, w, b, 1)
            # the switch travels with the graph: the backward runs outside the block
            got = grads_of(y, (x, w, b), g)
            assert len(calls) == count, (name, switch)
            torch.testing.assert_close(y, expected)
            assert_all_close(got, expected_grads)
            calls.clear()


def test_sparse_backward_off_records_the_plain_graph():
    x, w = leaves((1, 2, 6, 6), (3, 2, 3, 3))
    assert "SparseAwareConv" in type(direct_conv(x, w).grad_fn).__name__
    with fastpath.fastpath(sparse_backward="off"):
        assert "SparseAwareConv" not in type(direct_conv(x, w).grad_fn).__name__


# ---------------------------------------------------------------- sparse_pool_backward


@pytest.mark.parametrize("mode", ["pixel", "slice"])
def test_sparse_pool_backward_on_and_off(mode, monkeypatch):
    torch.manual_seed(2)
    conv = SiConv2d(2, 3, expected_num_scales(11, 12, 3), 3, method="fft").double()
    (x,) = leaves((2, 2, 11, 12))
    wrt = (x, conv.weights, conv.bias)
    pool = ScalePool(mode)
    calls = spy(monkeypatch, pool_module, "sparse_pool_grads")
    for name, dense in (("dense", True), ("sparse", False)):
        for switch, count in (("on", 1), ("off", 0)):
            with fastpath.fastpath(sparse_pool_backward=switch):
                y = siconv_scale_pool(conv, pool, x)
            g = torch.randn_like(y) if dense else torch.zeros_like(y)
            g[1, 2, 4, 5] = 1.5
            got = grads_of(y, wrt, g)  # outside the block: the forward's mode holds
            assert len(calls) == count, (name, switch)
            stack = conv.forward_direct(x)  # the direct definition at the chosen scales
            idx = pool.indices if mode == "pixel" else pool.indices[:, :, None, None]
            direct = stack.gather(2, idx.expand(*y.shape).unsqueeze(2)).squeeze(2)
            torch.testing.assert_close(y, direct)
            assert_all_close(got, grads_of(direct, wrt, g))
            calls.clear()


# ---------------------------------------------------------------- thresholds at call time


def test_thresholds_patched_in_fastpath_reach_every_module(monkeypatch):
    cfg = ConvConfig(7, 26, "bicubic", False)
    g = torch.zeros(2, 4, 52, 52)
    g[:, :, :4] = 1.0  # a dense pooled gradient
    idx = torch.zeros(2, 4, dtype=torch.long)
    conv_grad, weight = torch.ones(2, 4, 6, 6), torch.zeros(4, 3, 3, 3)
    assert not use_sparse_pool_backward(g, idx, 16, cfg, "slice")
    assert use_sparse_backward(conv_grad, weight)  # dense, but 7,776 products: small work
    monkeypatch.setattr(fastpath, "SPARSE_SMALL_WORK", 0)
    assert not use_sparse_backward(conv_grad, weight)
    monkeypatch.setattr(fastpath, "SPARSE_MAX_DENSITY", 1.0)
    monkeypatch.setattr(fastpath, "SPARSE_POOL_WORK_LIMIT", {"slice": 1 << 40})
    monkeypatch.setattr(fastpath, "SPARSE_WORK_LIMIT", 1 << 40)
    assert use_sparse_pool_backward(g, idx, 16, cfg, "slice")
    assert use_sparse_backward(conv_grad, weight)
    monkeypatch.setattr(fastpath, "SPARSE_WORK_LIMIT", 0)
    assert not use_sparse_backward(conv_grad, weight)

    x, w = torch.zeros(1, 16, 20, 20), torch.zeros(4, 16, 11, 11)
    assert fft_is_faster(x, w)
    monkeypatch.setattr(fastpath, "CPU_MIN_KERNEL_VOLUME", 200)
    assert not fft_is_faster(x, w)

    monkeypatch.setattr(direct_module, "_cpu_capability", lambda: "AVX512")
    x, w = torch.zeros(2, 16, 20, 20), torch.zeros(8, 16, 7, 7)
    assert not nnpack_is_faster(x, w)
    monkeypatch.setattr(fastpath, "NNPACK_SLOWER_ON", ())
    assert nnpack_is_faster(x, w) is NNPACK
    monkeypatch.setattr(fastpath, "NNPACK_KERNEL_SIZES", range(9, 12))
    assert not nnpack_is_faster(x, w)

    layer, x = SiConv2d(16, 32, 26, 7), torch.empty(16, 16, 58, 58)
    assert layer.resolved_method(x) == "fft"
    costs = {mode: {**c, "fft_fixed": 1e9} for mode, c in fastpath.COSTS.items()}
    monkeypatch.setattr(fastpath, "COSTS", costs)
    assert layer.resolved_method(x) == "direct"


# ---------------------------------------------------------------- build_model(method=...)


def test_build_model_method_reaches_the_siconv_layers():
    """k = 25 keeps the direct path cheap (20 and 8 scales)."""
    models = {}
    for method in ("direct", "fft"):
        torch.manual_seed(0)
        models[method] = build_model("pixel_pool", kernel_size=25, method=method).double()
    models["fft"].load_state_dict(models["direct"].state_dict())
    for method, model in models.items():
        layers = [m for m in model.modules() if isinstance(m, SiConv2d)]
        assert len(layers) == 2 and {m.method for m in layers} == {method}
    x = torch.rand(1, 1, 64, 64, dtype=DOUBLE)
    with torch.no_grad():
        torch.testing.assert_close(models["direct"](x), models["fft"](x))


def test_build_model_method_for_every_model_with_a_fast_path():
    conv3d = build_model("conv3d", method="direct")
    assert conv3d.conv1.method == conv3d.conv2.method == "direct"
    assert build_model("xu", method="fft").conv2.method == "fft"
    hermite = build_model("hermite", method="direct")
    assert hermite.conv1.method == hermite.conv2.method == "direct"
    assert build_model("pixel_pool").conv1.method == "auto"
    build_model("standard", method="direct")  # no such layers: ignored
    with pytest.raises(ValueError, match=r"'auto', 'direct', 'fft'.*'winograd'"):
        build_model("pixel_pool", method="winograd")
