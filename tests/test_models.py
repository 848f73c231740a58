"""The model registry and the paper's models built on TwoStageNet."""

import pytest
import torch
from torch import nn

from scalecnn.layers import expected_num_scales
from scalecnn.models import (
    build_model,
    get_spec,
    list_models,
    register_model,
    stage_scales,
    unregister_model,
)
from scalecnn.study import PAPER_MODELS

# Hand arithmetic (k = 7, C input channels, n classes):
#   conv1: 16·C·49 + 16, conv2: 32·16·49 + 32 = 25 120, lin: 32·n + n
#   C = 1, n = 36: 800 + 25 120 + 1 188 = 27 108
#   C = 3, n = 16: 2 368 + 25 120 + 528 = 28 016
#   conv3d's conv2 is Conv3d(16, 32, 7×7×7): 32·16·343 + 32 = 175 648
#   → C = 1, n = 36: 800 + 175 648 + 1 188 = 177 636
PARAM_COUNTS = {
    ("standard", 1, 36): 27108,
    ("pixel_pool", 1, 36): 27108,
    ("slice_pool", 1, 36): 27108,
    ("energy_pool", 1, 36): 27108,
    ("conv3d", 1, 36): 177636,
    ("standard", 3, 16): 28016,
    ("pixel_pool", 3, 16): 28016,
    ("conv3d", 3, 16): 178544,
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_the_papers_eleven_models_in_order_then_the_new_ones():
    assert len(PAPER_MODELS) == 11
    assert list_models()[:13] == [*PAPER_MODELS, "gaussder", "riesz"]


@pytest.mark.parametrize("key,count", sorted(PARAM_COUNTS.items()))
def test_parameter_counts(key, count):
    name, channels, classes = key
    assert n_params(build_model(name, num_channels=channels, num_classes=classes)) == count


def test_stage_scales():
    assert stage_scales(7) == (29, 26)
    assert stage_scales(3) == (31, 30)
    for k in (3, 5, 7, 9):
        s1, s2 = stage_scales(k)
        h1 = 64 - k + 1
        assert (s1, s2) == (expected_num_scales(64, 64, k), expected_num_scales(h1, h1, k))
        assert build_model("pixel_pool", kernel_size=k).conv2.num_scales == s2


def test_every_model_name_is_registered_by_its_own_function():
    for name in [*PAPER_MODELS, "gaussder", "riesz"]:
        factory = get_spec(name).factory
        assert factory.__name__ == name
        assert factory.__module__.startswith("scalecnn.models.")


@pytest.mark.parametrize("name", ["standard", "pixel_pool", "slice_pool", "energy_pool", "conv3d"])
def test_paper_state_dict_keys(name):
    keys = set(build_model(name).state_dict())
    weight = "weights" if name != "standard" else "weight"
    assert {f"conv1.{weight}", "conv1.bias", "conv2.bias", "lin.weight", "lin.bias"} <= keys


def test_pool_models_differ_only_in_pooling_mode():
    models = {m: build_model(m) for m in ("pixel_pool", "slice_pool", "energy_pool")}
    assert len({type(m) for m in models.values()}) == 1
    assert {m.pool1.mode for m in models.values()} == {"pixel", "slice", "energy"}


@pytest.mark.parametrize("name", ["standard", "pixel_pool", "slice_pool", "energy_pool"])
def test_traces_have_the_spec_shapes(name):
    assert get_spec(name).traced
    s1, s2 = build_model(name).feature_maps(torch.rand(2, 1, 64, 64))
    assert s1.shape == (2, 16, 58, 58) and s2.shape == (2, 32, 52, 52)
    assert s1.min() >= 0 and s2.min() >= 0  # after ReLU


def test_pixel_pool_forward_equals_manual_composition():
    torch.manual_seed(0)
    m = build_model("pixel_pool", kernel_size=7)
    x = torch.rand(2, 1, 64, 64)
    h = torch.relu(m.conv1(x).max(dim=2).values)
    h = torch.relu(m.conv2(h).max(dim=2).values)
    expected = m.lin(h.flatten(2).max(dim=2).values)
    assert torch.allclose(m(x), expected, atol=1e-5)


def _buildable(name):
    return not get_spec(name).needs_basis


@pytest.mark.parametrize("name", [m for m in PAPER_MODELS if m != "disco"])
@pytest.mark.parametrize("channels,classes", [(1, 36), (3, 16)])
def test_every_model_gives_logits_and_trains_one_step(name, channels, classes):
    torch.manual_seed(0)
    model = build_model(name, kernel_size=7, num_channels=channels, num_classes=classes)
    x = torch.rand(2, channels, 64, 64)
    y = torch.tensor([0, 1])
    out = model(x)
    assert out.shape == (2, classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    torch.nn.functional.cross_entropy(out, y).backward()
    opt.step()
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert changed > 0


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet'.*standard"):
        build_model("resnet")


def test_user_model_registration_without_editing_the_package():
    @register_model("tiny_user_model")
    def build_tiny(kernel_size, interpolation, num_channels, num_classes, **_):
        return nn.Sequential(nn.Flatten(), nn.Linear(num_channels * 64 * 64, num_classes))

    try:
        assert "tiny_user_model" in list_models()
        assert build_model("tiny_user_model", num_classes=5)(torch.rand(3, 1, 64, 64)).shape == (
            3,
            5,
        )
        with pytest.raises(ValueError, match="already registered"):
            register_model("tiny_user_model")(build_tiny)
    finally:
        unregister_model("tiny_user_model")
    assert "tiny_user_model" not in list_models()


def test_plugin_file_is_loaded(tmp_path):
    from scalecnn.models import load_plugins

    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(
        "from torch import nn\n"
        "from scalecnn.models import register_model\n"
        "@register_model('plugin_model')\n"
        "def build(kernel_size, interpolation, num_channels, num_classes, **_):\n"
        "    return nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(),\n"
        "                         nn.Linear(num_channels, num_classes))\n"
    )
    try:
        load_plugins([str(plugin)])
        assert build_model("plugin_model", num_classes=4)(torch.rand(1, 1, 64, 64)).shape == (1, 4)
    finally:
        unregister_model("plugin_model")
    with pytest.raises(FileNotFoundError, match="missing.py"):
        load_plugins([str(tmp_path / "missing.py")])
