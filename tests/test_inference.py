"""optimize_for_inference computes the same function as the model it prepares (float32, ≤ 1e-4), for every
registered model, at sizes that need padding; it leaves the caller's model untouched and keeps the spec and the
tiling protocol."""

import pytest
import torch

import zoo
from zoo import tiling
from zoo.errors import ZooError
from zoo.inference import Float32Island, InferenceModel, keep_float32, optimize_for_inference

TOLERANCE = 1e-4


def sample(height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", zoo.list_models())
def test_optimized_model_computes_the_same_function(name):
    model = zoo.create_model(name).eval()
    fast = optimize_for_inference(model)
    for x in (sample(45, 67),):  # odd: every model pads (size multiples 1, 4, 32)
        with torch.inference_mode():
            reference = model(x)
        result = fast(x)
        assert result.shape == reference.shape and result.dtype == torch.float32 and result.is_contiguous()
        error = float((result - reference).abs().max())
        print(f"{name} {tuple(x.shape[-2:])}: max abs difference {error:.2e}")
        assert error <= TOLERANCE


def test_caller_model_is_untouched_and_spec_is_kept():
    model = zoo.create_model("hdrunet").train()
    weight = next(model.parameters())
    fast = optimize_for_inference(model)
    assert model.training and weight.requires_grad and weight.is_contiguous()
    assert isinstance(fast, InferenceModel) and fast.zoo_spec is model.zoo_spec and not fast.training
    assert optimize_for_inference(fast) is fast
    assert zoo.optimize_for_inference is optimize_for_inference


def test_jit_frozen_variant_is_equivalent():
    model = zoo.create_model("twostage").eval()
    fast = optimize_for_inference(model, jit=True)
    x = sample(64, 92, seed=2)  # aligned, so a trace (if one was kept) is the path taken
    with torch.inference_mode():
        assert float((fast(x) - model(x)).abs().max()) <= TOLERANCE
    odd = sample(37, 51, seed=3)  # unaligned: the eager module pads
    with torch.inference_mode():
        assert float((fast(odd) - model(odd)).abs().max()) <= TOLERANCE


def test_bfloat16_autocast_is_close_and_float32_out():
    model = zoo.create_model("hdrunet").eval()
    fast = optimize_for_inference(model, precision="bfloat16")
    x = sample(32, 48, seed=4)
    with torch.inference_mode():
        reference = model(x)
    result = fast(x)
    assert result.dtype == torch.float32 and torch.isfinite(result).all()
    # bf16 keeps 8 significant bits: the error is far above float32's but far below the signal
    assert 0 < float((result - reference).abs().max()) < 0.1 * float(reference.abs().max())


def test_unknown_precision_is_refused():
    with pytest.raises(ZooError, match="precision"):
        optimize_for_inference(zoo.create_model("identity"), precision="int8")


def test_optimized_model_tiles_like_the_original():
    name = "twostage"
    model = zoo.create_model(name).eval()
    fast = optimize_for_inference(model)
    x = sample(70, 90, seed=5)
    plan = tiling.plan_tiles(fast, 70, 90, tile=32)
    assert plan is not None and plan.halo == tiling.tiling_halo(model)
    with torch.inference_mode():
        assert float((tiling.tiled_forward(fast, x, plan) - model(x)).abs().max()) <= TOLERANCE


def test_float32_modules_stay_float32_under_bfloat16():
    model = zoo.create_model("singlehdr").eval()
    fast = optimize_for_inference(model, precision="bfloat16")
    assert isinstance(fast.wrapped.linearization, Float32Island)
    dtypes = {}

    def record(name):
        def hook(module, inputs, output):
            dtypes.setdefault(name, output.dtype)

        return hook

    for name in ("linearization", "dequantization"):
        convs = (m for m in fast.wrapped.get_submodule(name).modules() if isinstance(m, torch.nn.Conv2d))
        next(convs).register_forward_hook(record(name))
    x = sample(64, 64, seed=6)
    framed = fast.wrapped.tiling_frame(x.contiguous(memory_format=torch.channels_last))[0]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        curve = fast.wrapped.global_context(framed)
    assert curve.dtype == torch.float32
    assert dtypes == {"dequantization": torch.bfloat16, "linearization": torch.float32}  # the island only
    with torch.inference_mode():
        reference = model.global_context(model.tiling_frame(x)[0])
    assert float((curve - reference).abs().max()) < 1e-2  # only its bf16 input differs
    assert not isinstance(optimize_for_inference(model).wrapped.linearization, Float32Island)  # float32: unchanged


def test_float32_module_that_does_not_exist_is_refused():
    with pytest.raises(ZooError, match="float32_modules names 'nope'"):
        keep_float32(zoo.create_model("twostage"), ("nope",))
