"""Steerable bases: the DISCO basis (optimisation, validation, file, CLI)."""

import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from scalecnn.bases import (
    DISCO_SCALES,
    basis_equivariance_error,
    compare_bases,
    dilated_delta_basis,
    hermite_basis,
    hermite_matrix,
    initial_disco_basis,
    mix_basis,
    normalize_basis,
    optimise_disco_basis,
    random_basis,
    save_basis,
)
from scalecnn.bases.disco import QUICK_SETTINGS, circular_conv, equivariance_loss, pair_maps
from scalecnn.cli import main
from scalecnn.models import build_model

# fewer held-out images than the report's default keep the tests fast
VAL_IMAGES = 4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: faster than two on a busy 2-core machine, and restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def quick_run():
    """The cheap setting of the quick configuration, seed 0: (raw, per-epoch losses)."""
    losses = []
    raw = optimise_disco_basis(
        seed=0, progress=lambda epoch, epochs, loss: losses.append(loss), **QUICK_SETTINGS
    )
    return raw, losses


def _dog(size, std, dilation=1.0):
    """x-derivative-of-Gaussian kernel dilated as ``a^-2 f(u / a)``."""
    t = torch.arange(size, dtype=torch.float64) - size // 2
    u, v = torch.meshgrid(t / dilation, t / dilation, indexing="ij")
    return ((u / std) * torch.exp(-(u**2 + v**2) / (2 * std**2)) / dilation**2).float()


def test_dilated_deltas_sit_on_the_dilated_grid():
    for scale, first in ((1, 4), (2, 1)):
        basis = dilated_delta_basis(15, 7, scale)
        assert basis.shape == (49, 15, 15)
        for f in range(49):
            r, c = divmod(f, 7)
            expected = torch.zeros(15, 15)
            expected[first + r * scale, first + c * scale] = 1
            assert torch.equal(basis[f], expected)
    with pytest.raises(ValueError):
        dilated_delta_basis(15, 7, 3)  # 19 pixels do not fit
    with pytest.raises(ValueError):
        dilated_delta_basis(15, 7, 1.5)


def test_circular_conv_shortcut_for_deltas_equals_conv2d():
    x = torch.rand(2, 1, 30, 30)
    for kernels in (dilated_delta_basis(15, 7, 2), torch.randn(5, 15, 15)):
        expected = F.conv2d(F.pad(x, [7] * 4, mode="circular"), kernels[:, None])
        assert torch.allclose(circular_conv(x, kernels), expected, atol=1e-5)


def test_exact_relation_for_integer_scales_and_its_direction():
    # dilated deltas at 1 and 2 are exactly equivariant under the relation
    # D_2(x * psi_2) = D_2(x) * psi_1 (away from the cropped borders)
    deltas = torch.stack([dilated_delta_basis(15, 7, 1), dilated_delta_basis(15, 7, 2)], dim=1)
    assert basis_equivariance_error(deltas, (1, 2), num_images=2, image_size=64) < 1e-6
    # the swapped pair (the larger kernel on the downscaled image) is far off
    swapped = deltas.flip(1)
    assert basis_equivariance_error(swapped, (1, 2), num_images=2, image_size=64) > 0.5


def test_relation_holds_for_dilated_kernels_at_a_fractional_ratio():
    # psi_j(u) = a^-2 psi_i(u / a) for a zero-mean kernel and a = 1.26
    pair = torch.stack([_dog(15, 1.5), _dog(15, 1.5, 1.26)])[None]  # (1, 2, 15, 15)
    good = basis_equivariance_error(pair, (1, 1.26), num_images=2, image_size=64)
    wrong = basis_equivariance_error(pair.flip(1), (1, 1.26), num_images=2, image_size=64)
    unscaled = torch.stack([_dog(15, 1.5), _dog(15, 1.5, 1.26) * 1.26**2])[None]
    no_amplitude = basis_equivariance_error(unscaled, (1, 1.26), num_images=2, image_size=64)
    assert good < 0.2 and wrong > 0.5 and no_amplitude > 0.3


def test_loss_matches_pair_maps_and_needs_an_integer_scale():
    basis = initial_disco_basis(seed=1)
    x = torch.rand(1, 1, 64, 64)
    pairs = list(pair_maps(x, basis, DISCO_SCALES))
    assert [(i, j) for i, j, _, _ in pairs] == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    assert pairs[0][2].shape == (1, 49, 50 - 16, 50 - 16)  # floor(64 / 1.26) = 50, crop 8
    total = sum((lhs - rhs).norm() for _, _, lhs, rhs in pairs)
    assert torch.allclose(equivariance_loss(x, basis, DISCO_SCALES), total)
    with pytest.raises(ValueError, match="integer"):
        optimise_disco_basis(scales=(1.26, 1.59), epochs=1, steps_per_epoch=1)
    with pytest.raises(ValueError, match="ascending"):
        optimise_disco_basis(scales=(2, 1), epochs=1, steps_per_epoch=1)


def test_shape_and_integer_scale_slices(quick_run):
    raw, _ = quick_run
    assert raw.shape == (49, 4, 15, 15) and raw.dtype == torch.float32
    assert torch.equal(raw[:, 0], dilated_delta_basis(15, 7, 1))
    assert torch.equal(raw[:, 3], dilated_delta_basis(15, 7, 2))
    final = mix_basis(raw)
    assert final.shape == (49, 4, 15, 15) and torch.isfinite(final).all()
    # the integer slices of the final basis are the Hermite functions on the dilated grid
    hermite = hermite_matrix().reshape(49, 7, 7)
    at_one = torch.zeros(49, 4, 15, 15)
    at_one[:, 0, 4:11, 4:11] = hermite
    at_one[:, 3, 1:14:2, 1:14:2] = hermite
    expected = normalize_basis(at_one)
    assert torch.allclose(final[:, 0], expected[:, 0], atol=1e-5)
    assert torch.allclose(final[:, 3], expected[:, 3], atol=1e-5)
    assert torch.allclose(final[:, 0].pow(2).sum(dim=(1, 2)), torch.ones(49), atol=1e-4)


def test_same_seed_same_basis():
    tiny = {**QUICK_SETTINGS, "steps_per_epoch": 3, "batch_size": 2, "image_size": 48}
    first = optimise_disco_basis(seed=5, **tiny)
    assert torch.equal(first, optimise_disco_basis(seed=5, **tiny))
    assert not torch.equal(first[:, 1], optimise_disco_basis(seed=6, **tiny)[:, 1])


def test_cheap_optimisation_lowers_the_loss(quick_run):
    raw, losses = quick_run
    assert len(losses) == QUICK_SETTINGS["epochs"] and all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    start = initial_disco_basis(seed=0, init_std=QUICK_SETTINGS.get("init_std", 1.0))
    before = basis_equivariance_error(start, num_images=VAL_IMAGES)
    after = basis_equivariance_error(raw, num_images=VAL_IMAGES)
    assert after < 0.75 * before


def test_disco_is_the_most_equivariant(quick_run):
    raw, _ = quick_run
    errors = compare_bases(mix_basis(raw), raw=raw, num_images=VAL_IMAGES)
    assert errors["disco"] < errors["hermite_b"] < errors["random"]
    assert errors["disco"] < errors["disco_untrained"]


def test_hermite_and_random_comparators():
    assert hermite_basis(scales=DISCO_SCALES).shape == (49, 4, 15, 15)
    r = random_basis(seed=3)
    assert torch.equal(r, random_basis(seed=3)) and r.shape == (49, 4, 15, 15)


def test_saved_basis_trains_the_disco_model(quick_run, tmp_path):
    final = mix_basis(quick_run[0])
    path = save_basis(tmp_path / "disco.pt", final)
    assert torch.equal(torch.load(path, weights_only=True), final)
    save_basis(tmp_path / "again.pt", final.clone())
    assert path.read_bytes() == (tmp_path / "again.pt").read_bytes()
    torch.manual_seed(0)
    model = build_model("disco", basis=path)
    assert torch.equal(model.conv1.basis, final)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(2, 1, 64, 64), torch.tensor([0, 5])
    before = model.conv1.weight.detach().clone()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.conv1.weight)
    npy = save_basis(tmp_path / "disco.npy", final)
    assert build_model("disco", basis=npy)(x).shape == (2, 36)
    with pytest.raises(ValueError):
        save_basis(tmp_path / "disco.txt", final)


def test_cli_help():
    out = subprocess.run(
        [sys.executable, "-m", "scalecnn.cli", "disco-basis", "--help"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0
    assert "--scales" in out.stdout and "--report" in out.stdout and "--threads" in out.stdout


def test_cli_is_deterministic_and_reports(tmp_path, capsys):
    args = [
        "disco-basis",
        "--scales",
        "1",
        "1.26",
        "1.59",
        "2",
        "--epochs",
        "2",
        "--steps-per-epoch",
        "3",
        "--batch-size",
        "2",
        "--image-size",
        "48",
        "--init-std",
        "0.01",
        "--lr",
        "0.01",
        "--seed",
        "4",
        "--threads",
        "1",
    ]
    assert (
        main(
            [
                *args,
                "--out",
                str(tmp_path / "a.pt"),
                "--report",
                str(tmp_path / "report.json"),
                "--validation-images",
                "1",
            ]
        )
        == 0
    )
    log = capsys.readouterr().err
    assert log.count(" loss ") == 2 and "epoch 2/2 loss" in log
    assert main([*args, "--out", str(tmp_path / "b.pt")]) == 0
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    basis = torch.load(tmp_path / "a.pt", weights_only=True)
    assert basis.shape == (49, 4, 15, 15)
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["equivariance_error"]) >= {"disco", "hermite_b", "random"}
    assert report["seconds"] > 0 and report["settings"]["seed"] == 4
    assert main(["disco-basis", "--scales", "1.5", "--out", str(tmp_path / "c.pt")]) == 2
