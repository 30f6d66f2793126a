"""HDRUNet against the official code's fixture (docs/models.md) and its documented layout."""

import pytest
import torch

import zoo
from zoo.errors import ZooError
from zoo.recipe import StepContext
from zoo.weights import load_weights, save_checkpoint


def count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_parameter_counts():
    model = zoo.create_model("hdrunet")
    assert count(model) == 1_651_494
    assert count(model.recon_trunk2) == 692_224
    assert count(model.mask_est) == 43_075
    assert count(model.CondNet3) == 55_392
    assert len(model.state_dict()) == 298


def test_module_ablation_drops_parameters():
    base = zoo.create_model("hdrunet", use_condition=False, use_weighting=False)
    cond = zoo.create_model("hdrunet", use_condition=True, use_weighting=False)
    assert count(base) < count(cond) < 1_651_494


@pytest.fixture(scope="module")
def fixture(fixtures_dir):
    return torch.load(fixtures_dir / "hdrunet_seed0.pt", weights_only=True)


@pytest.mark.fixtures
@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_checkpoint_reproduces_fixture(fixture, prefix):
    state = {prefix + k: v for k, v in fixture["state_dict"].items()}
    model = load_weights(zoo.create_model("hdrunet"), state).eval()
    with torch.no_grad():
        out = model(fixture["input"])
    assert (out - fixture["output"]).abs().max().item() <= 1e-5


@pytest.mark.fixtures
def test_zoo_checkpoint_round_trip(fixture, tmp_path):
    model = load_weights(zoo.create_model("hdrunet"), fixture["state_dict"])
    path = save_checkpoint(tmp_path / "w.pt", model)
    again = load_weights(zoo.create_model("hdrunet"), path).eval()
    with torch.no_grad():
        assert (again(fixture["input"]) - fixture["output"]).abs().max().item() <= 1e-5


def test_key_mismatch_names_the_keys():
    state = zoo.create_model("hdrunet").state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["conv_last.bias"]
    with pytest.raises(ZooError, match=r"missing keys: conv_last\.bias.*unexpected keys: extra\.weight"):
        load_weights(zoo.create_model("hdrunet"), state)


def test_shape_mismatch_names_the_key():
    state = zoo.create_model("hdrunet").state_dict()
    state["conv_last.weight"] = torch.zeros(3, 64, 1, 1)
    with pytest.raises(ZooError, match=r"conv_last\.weight has shape \(3, 64, 1, 1\)"):
        load_weights(zoo.create_model("hdrunet"), state)


def test_non_multiple_of_4_pads_and_crops():
    """Padding must not change the result on the region that a multiple-of-4 input shares (away from the border)."""
    torch.manual_seed(0)
    model = zoo.create_model("hdrunet").eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        full = model(x)
        odd = model(x[..., :63, :61])
    assert odd.shape == (1, 3, 63, 61)
    # the receptive field crosses the padded border only near it
    assert (odd[..., :40, :40] - full[..., :40, :40]).abs().max() < 1e-5


@pytest.mark.parametrize("loss", ["l1", "l2", "tanh_l1", "tanh_l2"])
def test_recipe_losses(loss):
    import torch.nn as nn

    spec = zoo.get_spec("hdrunet")
    recipe = spec.recipe(loss=loss)
    nets = nn.ModuleDict({"model": zoo.create_model("hdrunet")})
    batch = {"ldr": torch.rand(1, 3, 16, 16), "target": torch.rand(1, 3, 16, 16) * 3}
    value, logs = recipe.stages[0].objectives[0].loss(StepContext(nets, batch, None))
    assert value.ndim == 0 and torch.isfinite(value) and loss in logs
    # the value is the named loss of this very prediction (swapping L1 and L2, or dropping tanh, fails here)
    with torch.no_grad():
        pred, target = nets["model"](batch["ldr"]), batch["target"]
    if loss.startswith("tanh_"):
        pred, target = torch.tanh(pred), torch.tanh(target)
    expected = (pred - target).abs().mean() if loss.endswith("l1") else ((pred - target) ** 2).mean()
    torch.testing.assert_close(value.detach(), expected, rtol=1e-5, atol=1e-7)


def test_unknown_loss_is_rejected():
    with pytest.raises(ZooError, match="unknown loss 'l3'"):
        zoo.get_spec("hdrunet").recipe(loss="l3")
