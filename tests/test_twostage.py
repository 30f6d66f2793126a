"""Two-stage RDAB network: architecture, fixture fidelity (docs/models.md), official checkpoint layouts, recipe."""

from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn

import zoo
from zoo.errors import ZooError
from zoo.models.twostage.convert import convert_official, convert_official_checkpoint, official_key_map
from zoo.models.twostage.net import Discriminator, TwoStageHDR
from zoo.models.twostage.recipe import eight_bit_target
from zoo.train import build_stage_optim, fit
from zoo.weights import load_weights

FIXTURE_ATOL = 1e-5  # docs/models.md


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def fixture(fixtures_dir):
    path = fixtures_dir / "twostage_seed0.pt"
    if not path.is_file():
        pytest.skip(f"fixture {path} not found")
    return torch.load(path, map_location="cpu", weights_only=True)


# --------------------------------------------------------------------------------------------------------------------
# Architecture


def test_parameter_counts():
    model = zoo.create_model("twostage")
    assert n_params(model.stage1) == 555_655
    assert n_params(model.stage2) == 278_821
    assert n_params(model) == 834_476
    assert n_params(Discriminator()) == 4_689_601


def test_ablation_models_hold_one_stage():
    stage1_only = zoo.create_model("twostage", stages="stage1")
    stage2_only = zoo.create_model("twostage", stages="stage2")
    assert n_params(stage1_only) == 555_655 and not hasattr(stage1_only, "stage2")
    assert n_params(stage2_only) == 278_821 and not hasattr(stage2_only, "stage1")
    x = torch.rand(1, 3, 8, 12)
    with torch.no_grad():
        assert torch.equal(stage1_only(x), stage1_only.stage1(x))
        assert torch.equal(stage2_only(x), stage2_only.stage2(x))
    with pytest.raises(ZooError, match="stages"):
        zoo.create_model("twostage", stages="three")


@pytest.mark.parametrize("shape", [(1, 3, 13, 21), (2, 3, 8, 5)])
def test_any_size_nonnegative_output(shape):
    model = zoo.create_model("twostage").eval()
    x = torch.rand(shape)
    with torch.no_grad():
        out1, out2 = model.forward_stages(x)
        out = model(x)
    assert out.shape == x.shape == out1.shape
    assert torch.equal(out, out2)
    assert torch.isfinite(out).all() and (out >= 0).all() and (out1 >= 0).all()
    spec = zoo.get_spec("twostage")
    assert (spec.output_domain, spec.size_multiple) == ("ntire_gamma", 1)
    assert "2104.09386" in spec.paper and "MIT" in spec.code_licence and "no licence" in spec.weights_licence


def test_channels_last_input_matches():
    model = zoo.create_model("twostage").eval()
    x = torch.rand(1, 3, 12, 17)
    with torch.no_grad():
        reference = model(x)
        other = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(other, reference, atol=1e-5, rtol=0)


def test_forward_stages_detaches_stage2_input():
    model = zoo.create_model("twostage")
    x = torch.rand(1, 3, 8, 8)
    _, out2 = model.forward_stages(x)
    out2.sum().backward()
    assert all(p.grad is None for p in model.stage1.parameters())
    assert all(p.grad is not None for p in model.stage2.parameters())
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()  # the plain forward is the composition: gradients reach stage I
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.stage1.parameters())


def test_discriminator_conv9_padding_quirk():
    """The 1×1 conv9 with padding 1 adds a border equal to its bias, which the global average includes."""
    torch.manual_seed(0)
    discriminator = Discriminator().eval()
    features = {}
    discriminator.bn8.register_forward_hook(lambda module, args, out: features.update(bn8=out))
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        logits = discriminator.logits(x)
        probabilities = discriminator(x)
        feat = nn.functional.silu(features["bn8"])
        h, w = feat.shape[-2:]
        inner = nn.functional.conv2d(feat, discriminator.conv9.weight, discriminator.conv9.bias)
        border = (h + 2) * (w + 2) - h * w
        expected = (inner.sum(dim=(-2, -1)) + border * discriminator.conv9.bias) / ((h + 2) * (w + 2))
    assert logits.shape == probabilities.shape == (2, 1)
    torch.testing.assert_close(logits, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(probabilities, torch.sigmoid(expected), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------------------------------------------------
# Fixture fidelity and official layouts


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def fixture_model(fixture) -> TwoStageHDR:
    """The port loaded from the fixture's flat state dict (official names, unused layers included)."""
    return load_weights(zoo.create_model("twostage"), fixture["state_dict"]).eval()


@pytest.mark.fixtures
def test_fixture_reproduced(fixture, fixture_model):
    with torch.no_grad():
        out1, out2 = fixture_model.forward_stages(fixture["input"])
    err1 = (out1 - fixture["output_stage1"]).abs().max().item()
    err2 = (out2 - fixture["output_stage2"]).abs().max().item()
    print(f"twostage fixture max|diff|: stage1 {err1:.3g}, stage2 {err2:.3g}")
    assert err1 <= FIXTURE_ATOL and err2 <= FIXTURE_ATOL
    with torch.no_grad():  # model(x) is stage II's output; stage II alone on the official out1 matches as well
        assert (fixture_model(fixture["input"]) - fixture["output"]).abs().max().item() <= FIXTURE_ATOL
        assert (fixture_model.stage2(fixture["output_stage1"]) - fixture["output_stage2"]).abs().max() <= FIXTURE_ATOL


@pytest.mark.fixtures
def test_fixture_official_checkpoint_layout(fixture, fixture_model):
    official = {
        "step": 100,
        "stateDictEG": fixture["state_dict_stage1"],
        "stateDictER": fixture["state_dict_stage2"],
        "stateDictED": Discriminator().state_dict(),
        "optimizerEG": {"state": {}, "param_groups": []},
    }
    assert _same_weights(load_weights(zoo.create_model("twostage"), official), fixture_model)


@pytest.mark.fixtures
def test_fixture_file_loads_by_path(fixtures_dir, fixture_model):
    model = load_weights(zoo.create_model("twostage"), fixtures_dir / "twostage_seed0.pt")
    assert _same_weights(model, fixture_model)


@pytest.mark.fixtures
def test_only_known_unused_keys_are_dropped(fixture):
    converted = convert_official(fixture["state_dict"])
    assert len(fixture["state_dict"]) == 79 and len(converted) == 30 + 17
    assert set(converted) == set(zoo.create_model("twostage").state_dict())
    assert set(official_key_map("stage1").values()) == set(TwoStageHDR().stage1.state_dict())


@pytest.mark.fixtures
@pytest.mark.parametrize("layout", ["flat", "official"])
def test_unknown_extra_key_is_an_error(fixture, layout):
    if layout == "flat":
        state = dict(fixture["state_dict"]) | {"stage1.extraGate.weight": torch.zeros(3)}
        name = "stage1.extraGate.weight"
    else:
        stage2 = dict(fixture["state_dict_stage2"]) | {"block3.RDB1.conv1.weight": torch.zeros(3)}
        state = {"stateDictEG": fixture["state_dict_stage1"], "stateDictER": stage2}
        name = "block3.RDB1.conv1.weight"
    with pytest.raises(ZooError, match=name.replace(".", r"\.")):
        load_weights(zoo.create_model("twostage"), state)


@pytest.mark.fixtures
def test_missing_used_key_is_an_error(fixture):
    stage1 = {k: v for k, v in fixture["state_dict_stage1"].items() if k != "convOut.bias"}
    with pytest.raises(ZooError, match=r"convOut\.bias"):
        load_weights(zoo.create_model("twostage"), {"stateDictEG": stage1, "stateDictER": fixture["state_dict_stage2"]})
    with pytest.raises(ZooError, match="stateDictER"):
        load_weights(zoo.create_model("twostage"), {"stateDictEG": fixture["state_dict_stage1"]})


def test_zoo_state_dict_is_not_converted():
    model = zoo.create_model("twostage")
    assert convert_official(model.state_dict()) is None
    other = load_weights(zoo.create_model("twostage"), model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


@pytest.mark.fixtures
def test_convert_official_checkpoint_file(fixture, fixture_model, tmp_path):
    """An official-style file with a pickled StepLR: refused without trust, converted with it; the result is plain."""
    discriminator = Discriminator()
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=5e-4)
    official = {
        "step": 1234,
        "stateDictEG": fixture["state_dict_stage1"],
        "stateDictER": fixture["state_dict_stage2"],
        "stateDictED": discriminator.state_dict(),
        "optimizerED": optimizer.state_dict(),
        "schedulerLR": torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.01),
    }
    source = tmp_path / "official.pth"
    torch.save(official, source)
    out = tmp_path / "converted.pt"

    with pytest.raises(ZooError, match="pickled"):
        load_weights(zoo.create_model("twostage"), source)
    with pytest.raises(ZooError, match="trust"):
        convert_official_checkpoint(source, out)
    assert not out.exists()

    convert_official_checkpoint(source, out, trust=True)
    saved = torch.load(out, map_location="cpu", weights_only=True)
    assert saved["model"] == "twostage" and saved["step"] == 1234
    assert saved["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    reloaded = Discriminator()
    reloaded.load_state_dict(saved["discriminator_state_dict"])
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), discriminator.state_dict().values()))
    assert _same_weights(load_weights(zoo.create_model("twostage"), out), fixture_model)


# --------------------------------------------------------------------------------------------------------------------
# Recipe


def _batch(batch_size: int = 2, size: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(batch_size, 3, size, size, generator=generator) * 1.6  # NTIRE gamma HDR, some values > 1
    ldr = (target.clamp(0, 1) * 255).round() / 255
    return {"ldr": ldr, "target": target}


class _TinyDataset(torch.utils.data.Dataset):
    def __init__(self, n: int = 4, size: int = 16):
        batch = _batch(n, size, seed=1)
        self.samples = [{k: v[i] for k, v in batch.items()} for i in range(n)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.samples[index]


def _nets(stages: str = "both", recipe=None) -> nn.ModuleDict:
    recipe = recipe or zoo.get_spec("twostage").recipe(stages=stages)
    modules = {"model": zoo.create_model("twostage", stages=stages)}
    modules |= {name: build() for name, build in recipe.aux_modules.items()}
    return nn.ModuleDict(modules)


def test_recipe_structure():
    recipe = zoo.get_spec("twostage").recipe()
    (stage,) = recipe.stages
    assert [o.name for o in stage.objectives] == ["stage1", "discriminator", "stage2"]
    assert [o.params for o in stage.objectives] == [("model.stage1",), ("discriminator",), ("model.stage2",)]
    assert all(o.lr == 5e-4 and o.betas == (0.9, 0.99) for o in stage.objectives)
    assert stage.milestones == () and stage.fraction == 1.0
    assert isinstance(recipe.aux_modules["discriminator"](), Discriminator)
    assert [o.name for o in zoo.get_spec("twostage").recipe(stages="stage2").stages[0].objectives] == ["stage2"]
    with pytest.raises(ZooError, match="stages"):
        zoo.get_spec("twostage").recipe(stages="stage3")


def test_eight_bit_target():
    target = torch.tensor([-0.2, 0.0, 0.5 / 255, 1.5 / 255, 0.2, 1.0, 2.7])
    expected = torch.tensor([0.0, 0.0, 0.0, 2.0, 51.0, 255.0, 255.0]) / 255  # round half to even, as OpenCV
    torch.testing.assert_close(eight_bit_target(target), expected, atol=0, rtol=0)


@pytest.mark.parametrize("stages", ["both", "stage1", "stage2"])
def test_one_training_step_updates_every_trained_network(stages):
    torch.manual_seed(0)
    recipe = zoo.get_spec("twostage").recipe(stages=stages)
    nets = _nets(stages, recipe)
    model = nets["model"]
    groups = {
        "stage1": getattr(model, "stage1", None),
        "stage2": getattr(model, "stage2", None),
        "discriminator": nets["discriminator"] if "discriminator" in nets else None,
    }
    before = {name: [p.detach().clone() for p in m.parameters()] for name, m in groups.items() if m is not None}
    state = fit(
        nets, recipe, _TinyDataset(), total_steps=1, batch_size=2, seed=0, device=torch.device("cpu"), log_every=1
    )
    assert state.step == 1
    for name, params in before.items():
        after = list(groups[name].parameters())
        changed = sum(not torch.equal(a, b) for a, b in zip(params, after))
        assert changed == len(params), f"{name}: {changed}/{len(params)} tensors changed"
    logged = state.history[-1]
    assert all(torch.isfinite(torch.tensor(v)) for k, v in logged.items() if k not in ("stage", "step"))


def test_stage2_loss_gives_no_gradient_to_stage1():
    torch.manual_seed(0)
    recipe = zoo.get_spec("twostage").recipe()
    nets = _nets(recipe=recipe)
    step = recipe.step_context(nets, _batch())
    stage1_obj, discriminator_obj, stage2_obj = recipe.stages[0].objectives
    stage1_obj.loss(step)[0].backward()  # adversarial term reaches D through its weights
    assert all(p.grad is not None for p in nets["discriminator"].parameters())
    nets.zero_grad(set_to_none=True)
    discriminator_obj.loss(step)[0].backward()
    assert all(p.grad is None for p in nets["model"].parameters())
    nets.zero_grad(set_to_none=True)
    stage2_obj.loss(step)[0].backward()
    assert all(p.grad is None for p in nets["model"].stage1.parameters())
    assert all(p.grad is None for p in nets["discriminator"].parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in nets["model"].stage2.parameters())


@pytest.mark.parametrize("ciede2000_grad", [True, False])
def test_ciede2000_grad_option(ciede2000_grad):
    """Off (official): the colour term is logged but its gradient is absent, so stage II trains on L1 alone."""
    torch.manual_seed(0)
    recipe = zoo.get_spec("twostage").recipe(ciede2000_grad=ciede2000_grad)
    nets = _nets(recipe=recipe)
    batch = _batch()
    step = recipe.step_context(nets, batch)
    step.shared.out1 = nets["model"].stage1(batch["ldr"]).detach()
    loss, logs = recipe.stages[0].objectives[2].loss(step)
    assert logs["ciede2000"] > 0
    grads = torch.autograd.grad(loss, list(nets["model"].stage2.parameters()))
    l1 = nn.functional.l1_loss(nets["model"].stage2(step.shared.out1), batch["target"])
    l1_grads = torch.autograd.grad(l1, list(nets["model"].stage2.parameters()))
    same = all(torch.allclose(g, h, atol=1e-9, rtol=1e-6) for g, h in zip(grads, l1_grads))
    assert same is (not ciede2000_grad)
    expected = logs["l1"] + (logs["ciede2000"] / 255 if ciede2000_grad else 0.0)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_msssim_official_bug_option_changes_stage1_loss():
    torch.manual_seed(0)
    nets = _nets()
    batch = _batch()
    values = {}
    for bug in (False, True):
        recipe = zoo.get_spec("twostage").recipe(msssim_official_bug=bug)
        values[bug] = recipe.stages[0].objectives[0].loss(recipe.step_context(nets, batch))[1]["msssim"]
    assert values[True] != pytest.approx(values[False], rel=1e-4)


def test_recipe_and_model_stages_must_agree():
    recipe = zoo.get_spec("twostage").recipe(stages="stage1")
    nets = _nets("both", recipe)
    with pytest.raises(ZooError, match="stages='stage1'"):
        recipe.stages[0].objectives[0].loss(recipe.step_context(nets, _batch()))


def test_learning_rate_stays_constant():
    recipe = zoo.get_spec("twostage").recipe()
    nets = _nets(recipe=recipe)
    optim = build_stage_optim(nets, recipe.stages[0], n_steps=1000, lr_scale=1.0)
    assert len(optim.optimizers) == 3
    for _ in range(1000):  # fit() steps each optimiser, then each scheduler, every step
        for optimizer, scheduler in zip(optim.optimizers, optim.schedulers):
            optimizer.step()
            scheduler.step()
    assert all(group["lr"] == 5e-4 for opt in optim.optimizers for group in opt.param_groups)
