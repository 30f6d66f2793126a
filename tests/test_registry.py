"""Registry contract, parametrised over every registered model (timm-style): forward, finiteness, gradients."""

import pytest
import torch

import zoo
from zoo.errors import ZooError
from zoo.registry import DOMAINS

MODELS = zoo.list_models()
LEARNED = zoo.list_models(include_baselines=False)


def test_three_published_models_and_the_baselines_registered():
    assert LEARNED == ["hdrunet", "singlehdr", "twostage"]  # fails if any one of them stops registering
    assert MODELS == [
        "akyuz",
        "hdrunet",
        "identity",
        "inverse_gamma",
        "landis",
        "masia",
        "singlehdr",
        "tone_cheat",
        "twostage",
    ]


def test_unknown_model_lists_known_names():
    with pytest.raises(ZooError) as info:
        zoo.create_model("hdrunett")
    message = str(info.value)
    assert "hdrunett" in message and "did you mean 'hdrunet'" in message
    for name in MODELS:
        assert name in message
    assert "\n" not in message


def test_bad_override_is_a_zoo_error():
    with pytest.raises(ZooError, match="hdrunet"):
        zoo.create_model("hdrunet", no_such_argument=3)


def test_none_overrides_keep_defaults():
    model = zoo.create_model("hdrunet", use_condition=None)
    assert model.use_condition is True


@pytest.mark.parametrize("name", MODELS)
def test_spec_is_complete(name):
    spec = zoo.get_spec(name)
    assert spec.output_domain in DOMAINS
    assert spec.size_multiple >= 1
    assert spec.paper and spec.code_licence and spec.weights_licence
    recipe = spec.recipe()
    assert spec.is_baseline == (len(recipe.stages) == 0)


@pytest.mark.parametrize("name", MODELS)
def test_forward_any_size(name):
    torch.manual_seed(0)
    model = zoo.create_model(name).eval()
    x = torch.rand(2, 3, 45, 67)  # odd sizes, no model's multiple
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", LEARNED)
def test_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = zoo.create_model(name).train()
    y = model(torch.rand(1, 3, 64, 64))
    y.square().mean().backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_grad = [n for n, p in params if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad[:5]}"
