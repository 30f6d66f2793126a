"""``optimize_for_inference``: the same function as ``model(x)``, as fast as the device allows.

What helps was measured on the project's 2-core AMD EPYC (Zen 4, AVX-512, torch 2.13 CPU, oneDNN 3.12) with
benchmarks/speed.py (``variants`` table, results/bench/speed_variants.csv):

- channels-last memory format: the big win. With NCHW tensors every oneDNN convolution reorders its input and output
  to a blocked layout and back; channels-last feeds oneDNN directly (HDRUNet at 256×384: about 3× faster).
- inference mode: no autograd bookkeeping, intermediates freed as soon as they are dead (lower peak memory).
- ``torch.jit.freeze`` (conv-bias/BN folding, constant weights) and ``torch.jit.optimize_for_inference`` (MKLDNN
  tensors): no gain over eager channels-last for these models (the MKLDNN conversion around every non-conv op costs
  more than it saves), so off by default; ``jit=True`` enables freezing where tracing is shape-agnostic.
- no registered model has a Conv→BatchNorm pair in an ``nn.Sequential`` that eager folding could reach (SingleHDR
  calls its BatchNorms by name inside custom forwards); ``jit=True`` folds what the tracer sees.
- reduced precision (``precision="bfloat16"`` on CPU with AVX-512 BF16, ``"float16"``/``"bfloat16"`` on CUDA) through
  autocast: faster where the hardware has the units, at a measured error (about 1e-3 max abs on HDRUNet); off by
  default because the float32 contract is ≤ 1e-4. Submodules a spec names in ``float32_modules`` (numerically
  sensitive ones: SingleHDR's response-curve regression) run as ``Float32Island``: autocast off, inputs cast up.
  benchmarks/precision.py measures what reduced precision costs on the real evaluation scenes.

- glibc malloc tuning (``zoo.malloc``: reuse freed memory, transparent huge pages): ``zoo predict`` turns it on.

The wrapper keeps the model's ``zoo_spec`` and its tiling protocol (``zoo.tiling``), so tiled inference works on it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from zoo.errors import ZooError

log = logging.getLogger(__name__)

PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ZooError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


class InferenceModel(nn.Module):
    """A model prepared for inference. ``forward(x)``: x (B, 3, H, W) sRGB LDR in [0, 1], any size → the model's
    native output (float32, contiguous NCHW), computed in inference mode, channels-last and (optionally) under
    autocast. ``wrapped`` is the prepared module itself (gradient probes in ``zoo.tiling`` use it)."""

    def __init__(
        self, model: nn.Module, channels_last: bool = True, precision: str = "float32", traced: nn.Module | None = None
    ):
        super().__init__()
        _check_precision(precision)
        self.wrapped = model
        self.traced = traced
        self.channels_last = channels_last
        self.precision = precision
        self.zoo_spec = getattr(model, "zoo_spec", None)
        self.size_multiple = getattr(model, "size_multiple", getattr(self.zoo_spec, "size_multiple", 1))
        self.eval()

    def train(self, mode: bool = True) -> InferenceModel:
        """Always eval mode: an inference model has no training behaviour (BatchNorm statistics stay frozen)."""
        return super().train(False)

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        dtype = PRECISIONS[self.precision]
        return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()

    def prepared(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(x: torch.Tensor, *args: Any) -> Any:
            with torch.inference_mode(), self._autocast(x.device):
                if self.channels_last and x.ndim == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                y = fn(x, *args)
            if isinstance(y, torch.Tensor) and y.ndim == 4:
                y = y.float().contiguous()
            return y

        return run

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        aligned = x.shape[-2] % self.size_multiple == 0 and x.shape[-1] % self.size_multiple == 0
        use_trace = self.traced is not None and aligned  # traces are checked at aligned sizes only
        return self.prepared(self.traced if use_trace else self.wrapped)(x)


class Float32Island(nn.Module):
    """Runs ``module`` in float32 inside a reduced-precision autocast region: autocast off, floating-point tensor
    arguments cast to float32. Its parameters are ``module``'s own."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args: Any) -> Any:
        args = tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
        with torch.autocast(_device_type(args), enabled=False):
            return self.module(*args)


def _device_type(args: tuple[Any, ...]) -> str:
    return next((a.device.type for a in args if isinstance(a, torch.Tensor)), "cpu")


def keep_float32(model: nn.Module, names: tuple[str, ...]) -> None:
    """Replace each named submodule of ``model`` by a ``Float32Island`` around it (in place)."""
    for name in names:
        parent_name, _, attr = name.rpartition(".")
        try:
            parent = model.get_submodule(parent_name)
            child = parent.get_submodule(attr)
        except AttributeError:
            raise ZooError(
                f"{type(model).__name__}: float32_modules names {name!r}, which is not a submodule of the model"
            ) from None
        setattr(parent, attr, Float32Island(child))


def _trace_frozen(model: nn.Module, multiple: int, device: torch.device, channels_last: bool) -> nn.Module | None:
    """``torch.jit.freeze(torch.jit.trace(model))`` if the trace is shape-agnostic on aligned inputs: checked against
    eager at two aligned sizes other than the traced one (≤ 1e-5); None when tracing fails or the trace is
    size-specialised. (Unaligned inputs go to the eager module: its padding is Python control flow.)"""
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def sample(h: int, w: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(h * 1000 + w)
        return torch.rand(1, 3, h, w, generator=generator).to(device).contiguous(memory_format=fmt)

    side = 4 * multiple if multiple > 1 else 32
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript deprecation and tracer warnings: the result is checked below
            frozen = torch.jit.freeze(torch.jit.trace(model, sample(side, side), check_trace=False))
            for h, w in ((side + multiple, side + 2 * multiple), (2 * side, side + 3 * multiple)):
                x = sample(h, w)
                if (frozen(x) - model(x)).abs().max() > 1e-5:
                    log.info("jit trace of %s is size-specialised; keeping eager mode", type(model).__name__)
                    return None
    except Exception as exc:  # tracing arbitrary Python can fail in many ways; eager mode is always correct
        log.info("jit trace of %s failed (%s); keeping eager mode", type(model).__name__, type(exc).__name__)
        return None
    return frozen


def optimize_for_inference(
    model: nn.Module,
    *,
    channels_last: bool = True,
    precision: str = "float32",
    jit: bool = False,
    copy_model: bool = True,
) -> InferenceModel:
    """Prepare ``model`` for inference: eval mode, no gradients, channels-last weights and inputs, optional autocast
    (``precision``) and optional frozen TorchScript (``jit``; used only where the trace holds at every size).

    In float32 the result computes the same function as ``model`` (tests/test_inference.py checks ≤ 1e-4 max abs on
    every registered model). ``copy_model=False`` converts ``model`` itself instead of a copy (saves the memory of
    a second set of weights).
    """
    if isinstance(model, InferenceModel):
        return model
    _check_precision(precision)
    spec = getattr(model, "zoo_spec", None)
    prepared = copy.deepcopy(model, memo={id(spec): spec}) if copy_model else model  # the spec is shared registry data
    prepared.eval().requires_grad_(False)
    if channels_last:
        prepared = prepared.to(memory_format=torch.channels_last)
    if PRECISIONS[precision] is not None and spec is not None:
        keep_float32(prepared, spec.float32_modules)
    traced = None
    if jit:
        param = next(iter(prepared.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        traced = _trace_frozen(
            prepared, int(getattr(getattr(prepared, "zoo_spec", None), "size_multiple", 1)), device, channels_last
        )
    return InferenceModel(prepared, channels_last=channels_last, precision=precision, traced=traced)
