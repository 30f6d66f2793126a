"""ColorVideoVDP (Mantiuk et al., SIGGRAPH 2024; ``cvvdp`` 0.5.7, MIT, ships its data, CPU) in JOD, as an optional
perceptual metric: ``cvvdp_jod(reference, prediction)`` on linear relative HDR images.

Install (``make install`` does it): ``pip install 'hdr-zoo[perceptual]'`` for cvvdp's dependencies, then
``pip install --no-deps cvvdp==0.5.7``. ``--no-deps`` because cvvdp requires torchvision, and the torchvision wheels
on PyPI are built against the CUDA torch and cannot load beside the CPU torch this project pins. cvvdp uses
torchvision for one thing, ``torchvision.transforms.GaussianBlur`` (masking and PU dilation); when no loadable
torchvision is installed, ``load_cvvdp`` puts a minimal stand-in under that name, only for cvvdp's import:
``GaussianBlur`` below, written from torchvision's documented behaviour (a normalised Gaussian of the given odd size
and sigma, reflect padding), and a ``torchvision.ops.MLP`` that refuses to be built (only cvvdp's machine-learned
variants use it; their module is imported by cvvdp's ``__init__``). tests/test_cvvdp.py checks the blur against
scipy's Gaussian filter.

Display: ``standard_hdr_linear`` (30-inch 4K HDR monitor, 1500 cd/m² peak, 10 lux, BT.709 linear input in cd/m²).
Like the SI-HDR PU21 metrics, both images are put on an absolute scale by one factor that maps the reference's peak
to ``peak_luminance`` (``zoo.metrics.PROTOCOL``'s ``pu21_peak_luminance``); cvvdp then clips to the display.
Identical images score 10 JOD; lower is worse.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zoo.errors import ZooError

DISPLAY = "standard_hdr_linear"
INSTALL_HINT = "pip install 'hdr-zoo[perceptual]' && pip install --no-deps cvvdp==0.5.7"


class GaussianBlur(torch.nn.Module):
    """What cvvdp needs of ``torchvision.transforms.GaussianBlur``: blur the last two dimensions of a tensor with the
    normalised Gaussian of ``kernel_size`` taps (odd) and standard deviation ``sigma``, reflect-padded so the output
    has the input's shape. Separable (two 1-D passes), which equals the 2-D kernel up to float rounding."""

    def __init__(self, kernel_size: int, sigma: float):
        super().__init__()
        if kernel_size % 2 != 1 or kernel_size < 1:
            raise ValueError(f"GaussianBlur: kernel_size must be a positive odd number, got {kernel_size}")
        x = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
        weights = torch.exp(-0.5 * (x / float(sigma)) ** 2)
        self.kernel_size = kernel_size
        self.register_buffer("weights", (weights / weights.sum()).float(), persistent=False)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        shape = img.shape
        x = img.reshape(-1, 1, shape[-2], shape[-1])
        pad = self.kernel_size // 2
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        k = self.weights.to(device=x.device, dtype=x.dtype)
        x = F.conv2d(F.conv2d(x, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
        return x.reshape(shape)


class _MissingMLP:
    """Stands in for ``torchvision.ops.MLP``, which only cvvdp's machine-learned variants (``cvvdp_ml_*``, not used
    here) build: their module imports it, so the name must exist; building one says what is missing."""

    def __init__(self, *args: Any, **kwargs: Any):
        raise ZooError("cvvdp's ML variants need torchvision.ops.MLP, which the zoo's torchvision stand-in lacks")


def _torchvision_loads() -> bool:
    try:
        from torchvision.transforms import GaussianBlur as _  # noqa: F401
    except Exception:  # absent, or a CUDA build that fails against the CPU torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        return False
    return True


@functools.cache
def load_cvvdp() -> Any:
    """The ``pycvvdp`` module, imported with the torchvision stand-in when no loadable torchvision exists; a
    ``ZooError`` naming the install command when cvvdp or one of its dependencies is missing."""
    standin = not _torchvision_loads()
    if standin:
        package = types.ModuleType("torchvision")
        package.__path__ = []  # a package, so its submodules import
        package.transforms = types.ModuleType("torchvision.transforms")
        package.transforms.GaussianBlur = GaussianBlur
        package.ops = types.ModuleType("torchvision.ops")
        package.ops.MLP = _MissingMLP
        for module in (package, package.transforms, package.ops):
            sys.modules[module.__name__] = module
    try:
        return importlib.import_module("pycvvdp")
    except ImportError as exc:
        raise ZooError(f"ColorVideoVDP needs cvvdp and its dependencies ({exc}); install: {INSTALL_HINT}") from None
    finally:
        if standin:  # only cvvdp sees the stand-in: a later `import torchvision` finds the real state
            for name in ("torchvision.ops", "torchvision.transforms", "torchvision"):
                sys.modules.pop(name, None)


@functools.cache
def _metric(display: str) -> Any:
    return load_cvvdp().cvvdp(display_name=display, device=torch.device("cpu"), quiet=True)


def cvvdp_jod(
    reference: np.ndarray, prediction: np.ndarray, peak_luminance: float = 4000.0, display: str = DISPLAY
) -> float:
    """ColorVideoVDP quality in JOD of ``prediction`` against ``reference``: H×W×3 linear relative RGB (≥ 0), both
    scaled by the one factor that puts the reference's peak at ``peak_luminance`` cd/m²."""
    if reference.shape != prediction.shape or reference.ndim != 3 or reference.shape[2] != 3:
        raise ZooError(f"cvvdp: expected two H×W×3 images of one size, got {reference.shape} and {prediction.shape}")
    peak = float(np.max(reference))
    if not np.isfinite(peak) or peak <= 0:
        raise ZooError("cvvdp: the reference has no positive finite peak")
    scale = peak_luminance / peak
    test = torch.from_numpy(np.ascontiguousarray(np.clip(prediction, 0, None) * scale, dtype=np.float32))
    ref = torch.from_numpy(np.ascontiguousarray(np.clip(reference, 0, None) * scale, dtype=np.float32))
    with torch.no_grad():
        jod, _ = _metric(display).predict(test, ref, dim_order="HWC")
    return float(jod)
