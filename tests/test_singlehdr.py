"""SingleHDR port: parameter counts, TF fixtures (docs/models.md), official-name loading, any-size forward, the
staged recipe's losses and the perceptual loss."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pytest
import torch

import zoo
from zoo.data.crf import load_inverse_basis
from zoo.errors import ZooError
from zoo.losses.perceptual import VGG16_CONV_INDICES, VGG16_CONV_SHAPES, PerceptualLoss, vgg_input
from zoo.models.singlehdr.convert import convert_official
from zoo.models.singlehdr.net import highlight_mask
from zoo.models.singlehdr.recipe import RECIPE_NEEDS, exposure_mask, log_tonemap, masked_mean, tv_loss
from zoo.models.singlehdr.subnets import LinearizationNet, phase_kernels, upsampled_conv
from zoo.recipe import StepContext
from zoo.tf_compat import CURVE_SAMPLES, apply_rf
from zoo.weights import load_weights

SUBNET_PARAMS = {
    "dequantization": 1_999_779,
    "linearization": 1_200_971,
    "hallucination": 24_569_118,
    "refinement": 1_266_947,
}
FULL_TOLERANCES = {  # docs/models.md
    "deq_raw": 1e-5,
    "C": 1e-5,
    "lin_feature_512": 1e-5,
    "lin_pca_w_11": 1e-5,
    "invcrf_before_increase": 1e-5,
    "invcrf": 2e-5,
    "B": 2e-5,
    "alpha": 2e-4,
    "hal_vgg_pool5": 2e-4,
    "hal_h6_relu": 2e-4,
    "hal_raw": 2e-4,
    "A": 2e-4,
    "ref_raw": 2e-4,
    "output": 2e-4,
}
LINEARIZATION_TOLERANCES = {
    "features_102": 1e-5,
    "conv1_out": 1e-5,
    "pool1_out": 1e-5,
    "res2c_relu": 1e-4,
    "res3b_relu": 1e-4,
    "feature_512": 1e-5,
    "pca_w_11": 1e-5,
    "invcrf_before_increase": 1e-5,
    "invcrf": 2e-5,
    "B_linear": 2e-5,
}
TEACHER_FORCED_ATOL = 2e-5


def nchw(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(a))
    return t.permute(0, 3, 1, 2) if t.ndim == 4 else t


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@pytest.fixture(scope="module")
def invemor(reference_data):
    path = reference_data / "SingleHDR" / "invemor.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return str(path)


@pytest.fixture(scope="module")
def full_fixture(fixtures_dir):
    return np.load(fixtures_dir / "singlehdr_full_tf_seed0.npz", allow_pickle=False)


def recipe_weights(fixture, seed: int = 0) -> dict[str, np.ndarray]:
    """The full-model fixture's weight rule (SINGLEHDR_FIXTURES.md), in TF layout, keyed by TF variable name."""
    names = [str(n) for n in fixture["var_names"]]
    shapes = json.loads(str(fixture["var_shapes"]))
    weights = {}
    for i, (name, shape) in enumerate(zip(names, shapes)):
        rs = np.random.RandomState(seed * 100003 + i)
        leaf = name.split("/")[-1]
        if leaf in ("kernel", "weights", "W_conv2d"):
            gain = 0.01 if name == "ae_invcrf_decode_net/dense/kernel" else 1.0
            value = rs.normal(0.0, np.sqrt(gain / np.prod(shape[:-1])), size=shape)
            if "fuse_skip_connection" in name:
                c = shape[-1]
                value[0, 0, np.arange(c), np.arange(c)] += 1
                value[0, 0, c + np.arange(c), np.arange(c)] += 1
        elif leaf in ("bias", "biases", "b_conv2d"):
            value = rs.normal(0.0, 0.01, size=shape)
        elif leaf == "gamma":
            value = rs.normal(1.0, 0.1, size=shape)
        elif leaf in ("beta", "moving_mean"):
            value = rs.normal(0.0, 0.1, size=shape)
        elif leaf == "moving_variance":
            value = rs.uniform(0.5, 1.5, size=shape)
        else:
            raise AssertionError(f"no rule for {name}")
        weights[name] = value.astype(np.float32)
    return weights


@pytest.fixture(scope="module")
def fixture_weights(full_fixture):
    return recipe_weights(full_fixture)


@pytest.fixture(scope="module")
def fixture_model(invemor, fixture_weights):
    model = zoo.create_model("singlehdr", response_basis=invemor, pad_border=0).eval()
    return load_weights(model, fixture_weights)


@pytest.fixture(scope="module")
def small_model():
    """Project basis, default init: for shape, recipe and gradient tests."""
    torch.manual_seed(0)
    return zoo.create_model("singlehdr")


# ----------------------------------------------------------------------------------------------------------------------
# Architecture and spec.


def test_parameter_counts(small_model):
    for name, expected in SUBNET_PARAMS.items():
        assert sum(p.numel() for p in getattr(small_model, name).parameters()) == expected, name
    assert sum(p.numel() for p in small_model.parameters()) == 29_036_815
    bn_stats = sum(b.numel() for n, b in small_model.named_buffers() if n.endswith(("running_mean", "running_var")))
    assert bn_stats == 11_014  # 7,040 (Linearization) + 3,974 (Hallucination)
    assert not any("g0" in k or "components" in k for k in small_model.state_dict())  # basis: non-persistent


def test_spec():
    spec = zoo.get_spec("singlehdr")
    assert spec.output_domain == "linear_relative" and spec.size_multiple == 32 and spec.has_global_branch
    assert "BSD-3" in spec.code_licence and "MIT" in spec.code_licence and "none shipped" in spec.weights_licence
    assert spec.convert_official({"conv_first.weight": torch.zeros(1)}) is None  # not TF-named


def test_three_net_variant_has_no_refinement():
    model = zoo.create_model("singlehdr", refinement=False)
    assert model.refinement is None
    assert sum(p.numel() for p in model.parameters()) == 29_036_815 - SUBNET_PARAMS["refinement"]


# ----------------------------------------------------------------------------------------------------------------------
# Fixtures.


@pytest.mark.fixtures
@pytest.mark.parametrize("case", ["a", "b"])
def test_linearization_fixture(fixtures_dir, invemor, case):
    d = np.load(fixtures_dir / "singlehdr_linearization_tf_seed0.npz", allow_pickle=False)
    basis = load_inverse_basis(invemor)
    net = LinearizationNet(torch.from_numpy(basis.g0), torch.from_numpy(basis.components)).eval()
    mapping = {k[len("var/") :]: d[k] for k in d.files if k.startswith("var/")}
    state = convert_official(mapping)
    assert set(state) == {f"linearization.{k}" for k in net.state_dict()}
    net.load_state_dict({k[len("linearization.") :]: v for k, v in state.items()})
    taps: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        x = nchw(d[f"{case}/input_nhwc"])
        taps["invcrf"] = net(x, taps)
        taps["B_linear"] = apply_rf(x, taps["invcrf"])
    errors = {k: max_abs(taps[k], nchw(d[f"{case}/{k}"])) for k in LINEARIZATION_TOLERANCES}
    print(f"linearization case {case} max-abs:", errors)
    assert all(errors[k] <= tol for k, tol in LINEARIZATION_TOLERANCES.items()), errors


@pytest.mark.fixtures
def test_full_fixture_weight_recipe_hashes(full_fixture, fixture_weights):
    names = [str(n) for n in full_fixture["var_names"]]
    total = hashlib.sha256()
    for name, expected in zip(names, full_fixture["var_sha256"]):
        data = np.ascontiguousarray(fixture_weights[name]).astype("<f4").tobytes()
        assert hashlib.sha256(data).hexdigest() == str(expected), name
        total.update(data)
    assert total.hexdigest() == str(full_fixture["weights_sha256"])
    assert sum(v.size for v in fixture_weights.values()) == 29_047_829


@pytest.mark.fixtures
def test_full_fixture_end_to_end(full_fixture, fixture_model):
    d = full_fixture
    assert str(d["invemor_sha256"]) == hashlib.sha256(open(fixture_model.response_basis, "rb").read()).hexdigest()
    taps: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        out = fixture_model.run(nchw(d["input"]), taps)
        output = fixture_model(nchw(d["input"]))  # the public contract (no padding at pad_border=0 and 64×96)
    out["alpha"] = out["alpha"].expand(-1, 3, -1, -1)
    out.update(
        lin_feature_512=taps["feature_512"],
        lin_pca_w_11=taps["pca_w_11"],
        invcrf_before_increase=taps["invcrf_before_increase"],
        hal_vgg_pool5=taps["hal_vgg_pool5"],
        hal_h6_relu=taps["hal_h6_relu"],
    )
    errors = {k: max_abs(out[k], nchw(d[k])) for k in FULL_TOLERANCES}
    print("full model max-abs:", errors)
    assert all(errors[k] <= tol for k, tol in FULL_TOLERANCES.items()), errors
    assert max_abs(output, nchw(d["output"])) <= FULL_TOLERANCES["output"]


@pytest.mark.fixtures
def test_full_fixture_teacher_forced(full_fixture, fixture_model):
    d = {k: nchw(full_fixture[k]) for k in ("input", "deq_raw", "C", "invcrf", "B", "alpha", "hal_raw", "A", "ref_raw")}
    m = fixture_model
    with torch.no_grad():
        a, hal_raw, alpha = m.expand_highlights(d["B"])
        stages = {
            "deq_raw": m.dequantization(d["input"]),
            "invcrf": m.linearization(d["C"]),
            "B": apply_rf(d["C"], d["invcrf"]),
            "alpha": alpha.expand(-1, 3, -1, -1),
            "hal_raw": hal_raw,
            "A": a,
            "ref_raw": m.refinement(torch.cat([d["A"], d["B"], d["C"]], dim=1)),
        }
    assert torch.equal(highlight_mask(d["B"]), alpha)
    errors = {k: max_abs(v, d[k]) for k, v in stages.items()}
    print("teacher-forced max-abs:", errors)
    assert all(e <= TEACHER_FORCED_ATOL for e in errors.values()), errors


# ----------------------------------------------------------------------------------------------------------------------
# Official-name loading.


@pytest.mark.fixtures
def test_tf_mapping_loads_through_load_weights_and_skips_optimizer_slots(invemor, fixture_weights, fixture_model):
    mapping = {f"{k}:0": v for k, v in fixture_weights.items()}  # variable names as tf.Variable.name spells them
    mapping["Dequantization_Net/conv2d/kernel/Adam"] = np.zeros(1, np.float32)
    mapping["Hallucination_Net/encoder/h6/batch_norm/beta/Adam_1"] = np.zeros(1, np.float32)
    mapping.update(beta1_power=np.float32(0.9), beta2_power=np.float32(0.999), global_step=np.int64(7))
    model = load_weights(zoo.create_model("singlehdr", response_basis=invemor), mapping)
    for key, value in fixture_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    kernel = fixture_weights["Hallucination_Net/decoder/h3/decon2d/W_conv2d"]  # HWIO
    assert torch.equal(model.hallucination.decoder.h3.decon2d.weight, torch.from_numpy(kernel).permute(3, 2, 0, 1))
    dense = fixture_weights["ae_invcrf_decode_net/dense/kernel"]
    assert torch.equal(model.linearization.ae_invcrf_decode_net.dense.weight, torch.from_numpy(dense).t())


@pytest.mark.fixtures
def test_mismatched_tf_mapping_names_the_keys(fixture_weights):
    model = zoo.create_model("singlehdr", refinement=False)
    missing = {k: v for k, v in fixture_weights.items() if k != "crf_feature_net/bn2b_branch2a/BatchNorm/gamma"}
    with pytest.raises(ZooError, match="missing SingleHDR variables crf_feature_net/bn2b_branch2a/BatchNorm/gamma"):
        load_weights(model, missing)
    unknown = {**fixture_weights, "Hallucination_Net/decoder/h8/conv2d/W_conv2d": np.zeros((1, 1, 3, 3), np.float32)}
    with pytest.raises(ZooError, match="unknown SingleHDR variables Hallucination_Net/decoder/h8/conv2d/W_conv2d"):
        load_weights(model, unknown)
    wrong = {**fixture_weights, "Dequantization_Net/conv2d_18/kernel": np.zeros((3, 3, 3, 16), np.float32)}
    with pytest.raises(ZooError, match=r"Dequantization_Net/conv2d_18/kernel has shape \(3, 3, 3, 16\)"):
        load_weights(model, wrong)
    with pytest.raises(ZooError, match="unexpected keys: refinement"):  # joint checkpoint into the three-net model
        load_weights(model, fixture_weights)
    deq_only = {k: v for k, v in fixture_weights.items() if k.startswith("Dequantization_Net/")}
    with pytest.raises(ZooError, match="missing keys: linearization"):  # one released sub-net file alone
        load_weights(model, deq_only)


@pytest.mark.fixtures
def test_converted_checkpoint_round_trip(tmp_path, invemor, fixture_weights, fixture_model):
    from zoo.models.singlehdr.convert import save_tf_mapping, weights_sha256

    out = save_tf_mapping(fixture_weights, tmp_path / "singlehdr_official.pt", sources=["fixture recipe"])
    saved = torch.load(out, weights_only=True)
    assert saved["model"] == "singlehdr" and saved["refinement"] is True
    assert saved["weights_sha256"] == weights_sha256(fixture_model.state_dict())
    model = load_weights(zoo.create_model("singlehdr", response_basis=invemor), out)
    for key, value in fixture_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_convert_without_tensorflow_says_how_to_install(tmp_path):
    try:
        import tensorflow  # noqa: F401

        pytest.skip("TensorFlow is installed")
    except ImportError:
        pass
    from zoo.models.singlehdr.convert import convert_tf_checkpoint

    with pytest.raises(ZooError, match="pip install tensorflow"):
        convert_tf_checkpoint(tmp_path / "model.ckpt", tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


# ----------------------------------------------------------------------------------------------------------------------
# Inference contract.


@pytest.mark.parametrize("shape", [(1, 3, 45, 67), (2, 3, 96, 64)])
def test_any_size_forward(small_model, shape):
    torch.manual_seed(1)
    x = torch.rand(shape)
    with torch.no_grad():
        y = small_model.eval().stages(x, pad_border=0)["output"]  # speed: pad only to the multiple of 32
    assert y.shape == x.shape and torch.isfinite(y).all() and (y >= 0).all()
    if shape[0] == 1:  # channels-last input gives the same result
        with torch.no_grad():
            y_last = small_model.stages(x.contiguous(memory_format=torch.channels_last), pad_border=0)["output"]
        torch.testing.assert_close(y_last, y, atol=1e-5, rtol=0)


def test_batch_items_are_independent(small_model):
    torch.manual_seed(2)
    x = torch.rand(2, 3, 32, 32)
    x[1] = x[1] ** 3  # a different image gets a different curve
    with torch.no_grad():
        both = small_model.eval().stages(x, pad_border=0)
        single = small_model.stages(x[1:], pad_border=0)
    torch.testing.assert_close(both["output"][1:], single["output"], atol=1e-5, rtol=0)
    assert max_abs(both["invcrf"][0], both["invcrf"][1]) > 0


def test_default_forward_pads_the_official_border(small_model):
    torch.manual_seed(3)
    x = torch.rand(1, 3, 20, 30)
    with torch.no_grad():
        y = small_model.eval()(x)  # 20×30 + 32 px on every side, rounded up to 96×96
        unpadded = small_model.stages(x, pad_border=0)
    assert y.shape == x.shape and torch.isfinite(y).all() and (y >= 0).all()
    assert max_abs(y, unpadded["output"]) > 0  # the border changes the result: the curve and U-Nets see it


@pytest.mark.parametrize("channels_last", [False, True])
def test_upsampled_conv_is_the_resize_convolution(channels_last):
    """The Hallucination-Net's decoder convs run as four 2×2 phase convs on the low-resolution input; in float64 they
    equal nearest ×2 + reflect pad 1 + 3×3 conv (TF's ``decon2d``), forward and backward, on odd sizes."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, 7, 9, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight, bias = torch.randn(4, 5, 3, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    inputs = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
    direct = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
    upsampled = torch.nn.functional.interpolate(direct[0], scale_factor=2, mode="nearest")
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(upsampled, (1, 1, 1, 1), mode="reflect"), *direct[1:])
    y = upsampled_conv(*inputs)
    assert y.shape == (2, 4, 14, 18) and y.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert torch.allclose(y, expected, rtol=0, atol=1e-12)
    upstream = torch.randn_like(expected)
    (y * upstream).sum().backward()
    (expected * upstream).sum().backward()
    for ours, theirs in zip(inputs, direct):
        assert torch.allclose(ours.grad, theirs.grad, rtol=0, atol=1e-11)
    with torch.no_grad():  # inference: the folded kernels given, one phase at a time
        y = upsampled_conv(x, weight, bias, phase_kernels(weight).chunk(4))
    assert y.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert torch.allclose(y, expected, rtol=0, atol=1e-12)


def test_inference_refolds_resize_kernels_when_the_weights_change():
    """Without gradients a resize-conv folds its phase kernels once per set of weights; changed weights (an optimiser
    step, ``load_state_dict``) are folded again, so no-grad outputs always match the differentiable path."""
    from zoo.models.singlehdr.subnets import ResizeConv

    torch.manual_seed(0)
    layer, x = ResizeConv(6, 4).eval(), torch.rand(1, 6, 5, 7)
    with torch.no_grad():
        before = layer(x)
        layer.weight.add_(0.5)
        layer.load_state_dict({k: v * 2 for k, v in layer.state_dict().items()})
        after = layer(x)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, layer(x), rtol=0, atol=1e-6)  # grad enabled: folded inside the graph


def test_bad_input_shape_is_a_zoo_error(small_model):
    with pytest.raises(ZooError, match=r"expected an RGB batch \(B, 3, H, W\)"):
        small_model(torch.rand(1, 4, 32, 32))


# ----------------------------------------------------------------------------------------------------------------------
# Recipe and losses.


def synthetic_batch(batch: int = 2, size: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    """A tiny camera: exposed scene, noise, clip, gamma-2.2 response, 8-bit quantisation; every key of the contract."""
    g = torch.Generator().manual_seed(seed)
    linear = torch.rand(batch, 3, size, size, generator=g) * 1.6
    noisy = torch.relu(linear + 0.01 * linear * torch.randn(linear.shape, generator=g))
    clipped = noisy.clamp(0, 1)
    unquantized = clipped ** (1 / 2.2)
    grid = torch.linspace(0, 1, CURVE_SAMPLES)
    return {
        "ldr": torch.round(unquantized * 255) / 255,
        "target": linear ** (1 / 2.24),
        "linear": linear,
        "linear_noisy": noisy,
        "linear_clipped": clipped,
        "ldr_unquantized": unquantized,
        "inv_crf": (grid**2.2).expand(batch, -1).contiguous(),
    }


def test_recipe_stages_give_gradients_to_their_subnets_only(small_model):
    recipe = zoo.get_spec("singlehdr").recipe()
    names = ["dequantization", "linearization", "hallucination", "joint", "refinement"]
    assert [s.name for s in recipe.stages] == names
    assert sum(s.fraction for s in recipe.stages) == pytest.approx(1.0)
    assert set(recipe.needs) == set(RECIPE_NEEDS) and set(RECIPE_NEEDS) <= set(synthetic_batch(1))
    nets = torch.nn.ModuleDict({"model": small_model})
    batch = synthetic_batch()
    subnets = ("dequantization", "linearization", "hallucination", "refinement")
    for stage in recipe.stages:
        (objective,) = stage.objectives
        for path in objective.params + stage.train_modules:
            nets.get_submodule(path)  # every dotted path resolves (the loop builds Adam and train mode from them)
        trained = {p.split(".")[1] for p in objective.params if p != "model"} or set(subnets)
        nets.eval()
        for path in stage.train_modules:
            nets.get_submodule(path).train()
        nets.zero_grad(set_to_none=True)
        loss, logs = objective.loss(StepContext(nets, batch, None))
        assert loss.ndim == 0 and torch.isfinite(loss), stage.name
        assert logs and all(np.isfinite(v) for v in logs.values()), stage.name
        loss.backward()
        for name in subnets:
            grads = [p.grad for p in getattr(small_model, name).parameters()]
            has_grad = any(g is not None and g.abs().sum() > 0 for g in grads)
            assert has_grad == (name in trained), (stage.name, name)
    nets.zero_grad(set_to_none=True)
    small_model.eval()


@pytest.mark.slow  # three Adam optimisers over up to 29M parameters: ~10-30 s on 2 cores
def test_recipe_runs_in_the_training_loop(small_model, caplog):
    from zoo.train import fit

    recipe = zoo.get_spec("singlehdr").recipe(refinement_scale="mean")
    samples = [{k: v[0] for k, v in synthetic_batch(1, 32, seed).items()} for seed in range(4)]
    nets = torch.nn.ModuleDict({"model": small_model})
    before = {k: v.clone() for k, v in small_model.state_dict().items()}
    with caplog.at_level(logging.WARNING, logger="zoo.losses.perceptual"):
        state = fit(nets, recipe, samples, total_steps=5, batch_size=2, seed=0, device=torch.device("cpu"), log_every=1)
    assert [h["stage"] for h in state.history] == [s.name for s in recipe.stages]
    assert sum("perceptual loss disabled" in r.message for r in caplog.records) == 1  # warned once, two stages use it
    after = small_model.state_dict()
    for key in ("dequantization.conv2d.weight", "refinement.conv2d_18.bias"):
        assert not torch.equal(before[key], after[key]), key
    small_model.load_state_dict(before)


def test_exposure_mask_drops_extreme_images_and_divides_by_batch():
    ldr = torch.full((3, 3, 8, 8), 0.5)
    ldr[0, :, :5] = 1.0  # 62 % saturated
    ldr[1, :, :4] = 0.0  # exactly half dark: kept (the rule is "more than half")
    ldr[2] = 6 / 255  # all dark
    mask = exposure_mask(ldr)
    assert mask.tolist() == [0.0, 1.0, 0.0]
    assert masked_mean(torch.tensor([1.0, 2.0, 3.0]), mask) == pytest.approx(2.0 / 3.0)


def test_log_tonemap_and_tv():
    assert log_tonemap(torch.tensor([0.0, 1.0])).tolist() == pytest.approx([0.0, 1.0])
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(2, 3, 5, 4)
    assert float(tv_loss(ramp)) == pytest.approx(3 / 4)  # 3 unit steps over 4 columns, none vertically


def test_recipe_options_are_checked():
    with pytest.raises(ZooError, match="refinement_scale"):
        zoo.get_spec("singlehdr").recipe(refinement_scale="median")
    with pytest.raises(ZooError, match="hallucination_loss"):
        zoo.get_spec("singlehdr").recipe(hallucination_loss="l1")
    assert [s.name for s in zoo.get_spec("singlehdr").recipe(refinement=False).stages][-1] == "joint"


def test_paper_hallucination_loss_option(small_model):
    recipe = zoo.get_spec("singlehdr").recipe(hallucination_loss="log_l2")
    batch = synthetic_batch()
    nets = torch.nn.ModuleDict({"model": small_model.eval()})
    hallucination = next(s for s in recipe.stages if s.name == "hallucination").objectives[0]
    with torch.no_grad():
        _, logs = hallucination.loss(StepContext(nets, batch, None))
        a = small_model.expand_highlights(batch["linear_clipped"])[0]
    expected = (torch.log(a + 1 / 255) - torch.log(batch["linear_noisy"] + 1 / 255)).square().mean()
    assert logs["hal"] == pytest.approx(float(expected), rel=1e-4)


def test_highlight_threshold_paper_option():
    b = torch.tensor([0.5, 0.9, 0.96, 0.975, 1.0, 1.3]).view(1, 1, 1, 6).expand(1, 3, 1, 6)
    expected = [0, 0.02 / 0.12, 0.08 / 0.12, 0.095 / 0.12, 1, 1]
    assert highlight_mask(b).flatten().tolist() == pytest.approx(expected, abs=1e-6)
    assert highlight_mask(b, 0.05).flatten().tolist() == pytest.approx([0, 0, 0.2, 0.5, 1, 1], abs=1e-6)
    assert zoo.create_model("singlehdr", highlight_threshold=0.05).highlight_threshold == 0.05


# ----------------------------------------------------------------------------------------------------------------------
# Perceptual loss and VGG16 weights.


@pytest.fixture(scope="module")
def random_vgg_file(tmp_path_factory):
    generator = torch.Generator().manual_seed(3)
    state = {}
    for index, (c_in, c_out) in zip(VGG16_CONV_INDICES, VGG16_CONV_SHAPES):
        weight = torch.randn(c_out, c_in, 3, 3, generator=generator) * (2 / (9 * c_in)) ** 0.5  # He init
        state[f"features.{index}.weight"] = weight
        state[f"features.{index}.bias"] = torch.randn(c_out, generator=generator) * 0.01
    path = tmp_path_factory.mktemp("vgg") / "vgg16_random.pth"
    torch.save(state, path)
    return path


def test_perceptual_loss_with_weights(random_vgg_file):
    loss = PerceptualLoss(random_vgg_file)
    target = torch.rand(2, 3, 32, 32)
    prediction = (target + 0.1 * torch.randn(2, 3, 32, 32)).clamp(0, 1).requires_grad_()
    value = loss(prediction, target)
    assert value.shape == (2,) and (value > 0).all()
    assert torch.all(loss(target, target) == 0)
    value.sum().backward()
    assert prediction.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())


def test_perceptual_loss_without_weights_warns_once(caplog):
    loss = PerceptualLoss(None)
    with caplog.at_level(logging.WARNING, logger="zoo.losses.perceptual"):
        first = loss(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))
        loss(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))
    assert torch.equal(first, torch.zeros(2))
    assert sum("perceptual loss disabled" in r.message for r in caplog.records) == 1


def test_bad_vgg_file_names_the_key(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(ZooError, match="features.0.bias missing"):
        PerceptualLoss(path)


def test_recipe_with_vgg_weights_uses_the_perceptual_term(small_model, random_vgg_file):
    recipe = zoo.get_spec("singlehdr").recipe(vgg_weights=str(random_vgg_file))
    hallucination = next(s for s in recipe.stages if s.name == "hallucination").objectives[0]
    _, logs = hallucination.loss(StepContext(torch.nn.ModuleDict({"model": small_model}), synthetic_batch(), None))
    assert logs["perceptual"] > 0


def test_hallucination_encoder_from_vgg_file(random_vgg_file):
    model = zoo.create_model(
        "singlehdr", refinement=False, vgg16_encoder=str(random_vgg_file), vgg16_convention="caffe"
    )
    encoder = model.hallucination.encoder
    state = torch.load(random_vgg_file, weights_only=True)
    assert torch.equal(encoder.h5.conv_3.weight, state["features.28.weight"])
    model.hallucination.load_vgg16(str(random_vgg_file), convention="torchvision")
    x = torch.rand(1, 3, 12, 12)
    caffe_input = vgg_input(x, "caffe")
    folded = encoder.h1.conv_1(caffe_input)
    reference = torch.nn.functional.conv2d(
        vgg_input(x, "torchvision"), state["features.0.weight"], state["features.0.bias"], padding=1
    )
    torch.testing.assert_close(folded[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1], atol=1e-4, rtol=1e-4)
    assert torch.equal(encoder.h2.conv_1.weight, state["features.5.weight"])


def test_perceptual_term_is_in_caffe_units_whichever_convention(random_vgg_file):
    """λp = 1e-3 was set for the official Caffe VGG (inputs ×255): one file read in both conventions gives distances
    of the same order once the torchvision one is expressed in Caffe units (raw, it is ~57× smaller)."""
    from zoo.losses.perceptual import TORCHVISION_TO_CAFFE

    target = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    prediction = (target + 0.1 * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    caffe = PerceptualLoss(random_vgg_file, "caffe")(prediction, target)
    torchvision = PerceptualLoss(random_vgg_file, "torchvision")(prediction, target)
    raw = PerceptualLoss(random_vgg_file, "torchvision", scale=1.0)(prediction, target)
    assert TORCHVISION_TO_CAFFE == pytest.approx(57.63, abs=0.01)
    torch.testing.assert_close(torchvision, raw * TORCHVISION_TO_CAFFE)
    ratio = (torchvision / caffe).tolist()
    assert all(0.5 < r < 2 for r in ratio), ratio
    assert all(r < 0.05 for r in (raw / caffe).tolist())
