"""Seamless tiled inference: any image size within a memory budget, with the same result as one untiled pass.

Method (halo-crop, no blending). The image is first *framed* the way the model's own forward pads it (by default:
replicate-pad the bottom and right edges up to the spec's ``size_multiple``, which is what HDRUNet does; a no-op for
size multiple 1). The framed image is cut into a grid of core tiles whose edges lie on multiples of the size multiple,
so every window sees the same down-sampling grid as the whole image. Each core is computed from a *window* that adds
``halo`` pixels of real image context on every side (windows at the border are shifted inwards, so every window has
the same size), and only the core of each output is kept. When the halo is at least the network's receptive-field
radius, each kept output pixel depends on exactly the pixels it depends on in the untiled pass, so tiled and untiled
outputs agree up to float rounding; with the (default) effective halo they agree to far better than 50 dB PSNR.
Blending is not needed, and would only average two approximations.

The halo is *measured* on the model itself, with its own weights (``receptive_field``): from the input gradient of an
aligned block of output pixels on a random input (another one, up to ``PROBE_INPUTS``, where a clamped output such as
a ReLU head gives that block no gradient at all), the *effective* radius outside which at most ``EFFECTIVE_MASS``
(1e-5) of the gradient mass lies is the default; the *exact* radius (the gradient's support; HDRUNet 93 px, the
two-stage net 17 px) is available with ``halo_exact=True`` and makes tiles equal the untiled pass up to float
rounding. On HDRUNet (random init) the effective halo is 20–24 px instead of 96 px: 2.4× less computation for a tiled
1900×1060 frame under the default budget (results/bench/speed.csv), at a tiled-vs-untiled PSNR above 130 dB
(speed_tiling.csv; tests/test_tiling.py checks ≥ 50 dB for every model).

Global branches. A model whose spec says ``has_global_branch`` (SingleHDR's inverse response curve is a function of
the whole image) tiles only if it implements ``zoo.tileable.GlobalBranchTiling`` (frame the image, compute the global
context once, run a window with it); otherwise ``plan_tiles`` runs it untiled (and refuses an explicit tile size with
a ``ZooError``). Windows are planned on the frame the model really runs on (``framed_size``: SingleHDR pads 32 px
symmetrically and rounds up to 32, so a 1900×1060 photo runs as 1984×1152). The context is computed once on the
whole framed image, unless an automatic plan's budget cannot hold the context pass on the whole frame
(``context_bytes_per_pixel``): then it is computed on the frame downscaled by area averaging to what the budget holds
(``context_input``; 37 % of a 1900×1060 frame's pixels for SingleHDR at the default 1 GiB), so no pass exceeds the
budget.
That is an approximation (the only one in tiling); tests/test_tiling.py measures its effect on the shipped SingleHDR
weights.

Memory model. Peak memory of a convolutional network grows linearly with the pixels it processes. ``activation_bytes_
per_pixel`` runs one window of ``PROBE_SIZE``² pixels under a dispatch mode that counts the bytes of every live tensor
and reports the peak per pixel (HDRUNet and the two-stage net: about 2 KB per pixel, eight 64-channel float maps).
The process's peak RSS grows by about ``SAFETY`` × that count per window pixel: measured 1.1–1.3× with glibc's
default malloc and 2.1–2.4× with ``zoo.malloc.reuse_freed_memory`` (which ``zoo predict`` turns on: freed blocks
are kept for reuse, so fragmentation stays resident, but page faults disappear). ``plan_tiles`` chooses
the tiling whose largest window fits ``budget_bytes`` (default ``default_budget()``: ``DEFAULT_BUDGET`` capped at half
the available RAM) and that computes the fewest pixels (halo overhead included). Without an explicit budget, a plan
whose windows would be mostly halo (computing more than ``MAX_HALO_OVERHEAD`` × the frame's pixels: SingleHDR's
160 px halo makes 1 GiB windows compute 8× the frame) doubles the budget, up to ``memory_ceiling()`` (half the
available RAM), until the overhead is at most that or the frame fits whole: small windows save memory only where they
do not multiply the work. HDRUNet and the two-stage net stay at 1 GiB (overhead 1.07–1.2× at 1900×1060). On top of
the budget come the interpreter, torch and the weights (about 0.25 GB) and the image buffers (about 50 bytes per
image pixel).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from zoo import probe_cache
from zoo.errors import ZooError
from zoo.inference import InferenceModel
from zoo.malloc import release_free_memory
from zoo.tileable import GlobalBranchTiling

log = logging.getLogger(__name__)

RADIUS_CAP = 256  # largest receptive-field radius measured exactly (the probe is ~2·cap pixels wide)
EFFECTIVE_MASS = 1e-5  # beyond the cap: halo = radius holding all but this share of the input-gradient mass
PROBE_INPUTS = 4  # seeded random inputs tried before a zero input gradient is taken to mean a constant output
PROBE_SETTINGS = (
    f"gradient probe v2, caps 32/96/{RADIUS_CAP}, mass {EFFECTIVE_MASS:g}, inputs {PROBE_INPUTS}"  # disk cache key
)
PROBE_SIZE = 128  # side of the window used to measure activation bytes per pixel
MEMORY_PROBE_SETTINGS = f"activation bytes v2, {PROBE_SIZE} px"  # keys the disk cache
DEFAULT_BUDGET = 1 << 30  # peak RSS growth for one window: about 1.4 GB peak RSS in all at 2 MP
MAX_HALO_OVERHEAD = 1.5  # beyond this × the frame's pixels computed, an automatic plan may take a larger budget
# Measured once per model object (the probes cost more than a small image's pass); weak keys: no model is kept alive.
_RECEPTIVE_FIELDS: weakref.WeakKeyDictionary[nn.Module, ReceptiveField] = weakref.WeakKeyDictionary()
_BYTES_PER_PIXEL: weakref.WeakKeyDictionary[nn.Module, float] = weakref.WeakKeyDictionary()
_CONTEXT_BYTES_PER_PIXEL: weakref.WeakKeyDictionary[nn.Module, float] = weakref.WeakKeyDictionary()
SAFETY = 2.4  # peak RSS growth / counted activation bytes, measured at 1900×1060 with reuse_freed_memory (HDRUNet 2.1,
# two-stage 2.4: freed blocks are reused, not returned, so fragmentation stays resident); 1.1–1.3 with default malloc


@dataclass(frozen=True)
class TilePlan:
    """Core tile size (multiples of ``align``) and the halo of context on every side. ``context_pixels``: the most
    pixels the global context (``GlobalBranchTiling.global_context``) may be computed on; a larger framed image is
    downscaled (area) for it, so it stays within the memory budget too (None: always the whole framed image)."""

    tile_h: int
    tile_w: int
    halo: int
    align: int
    context_pixels: float | None = None

    def windows(self, height: int, width: int) -> list[tuple[slice, slice, slice, slice]]:
        """For a framed image height×width: (core rows, core cols, window rows, window cols) per tile, row-major.
        Every window has the same size and holds its core plus at least ``halo`` pixels wherever the image has them."""
        rows = _axis(height, self.tile_h, self.halo)
        cols = _axis(width, self.tile_w, self.halo)
        return [(cr, cc, wr, wc) for cr, wr in rows for cc, wc in cols]

    def largest_window(self, height: int, width: int) -> int:
        """Pixels of the largest window (what bounds the memory)."""
        rows = max(w.stop - w.start for _, w in _axis(height, self.tile_h, self.halo))
        cols = max(w.stop - w.start for _, w in _axis(width, self.tile_w, self.halo))
        return rows * cols

    def overhead(self, height: int, width: int) -> float:
        """Computed pixels per image pixel (1.0: no halo recomputed)."""
        return self.computed_pixels(height, width) / (height * width)

    def computed_pixels(self, height: int, width: int) -> int:
        """Pixels computed over all windows (the image plus the halo overhead)."""
        rows = sum(w.stop - w.start for _, w in _axis(height, self.tile_h, self.halo))
        cols = sum(w.stop - w.start for _, w in _axis(width, self.tile_w, self.halo))
        return rows * cols


def _axis(length: int, tile: int, halo: int) -> list[tuple[slice, slice]]:
    """(core, window) spans along one axis: cores of ``tile`` from 0; every window is min(tile + 2·halo, length) long,
    centred on its core and shifted inside [0, length) at the ends (so it holds at least ``halo`` of context on each
    side the image has). Equal windows matter on CPU: oneDNN reuses its primitives and malloc its freed blocks."""
    window = min(tile + 2 * halo, length)
    spans = []
    for start in range(0, length, tile):
        first = min(max(start - halo, 0), length - window)
        spans.append((slice(start, min(start + tile, length)), slice(first, first + window)))
    return spans


# ----------------------------------------------------------------------------------------------------------------------
# The model's side of tiling


@dataclass(frozen=True)
class TilingHooks:
    """How the tiler calls a model: frame the whole image, compute the global context, run one aligned window."""

    frame: Callable[[torch.Tensor], tuple[torch.Tensor, tuple[int, int]]]
    context: Callable[[torch.Tensor], Any]
    window: Callable[[torch.Tensor, Any], torch.Tensor]
    align: int
    tileable: bool
    name: str
    device: torch.device
    has_context: bool = False


def _spec_attr(model: nn.Module, attr: str, default: Any) -> Any:
    spec = getattr(model, "zoo_spec", None)
    return getattr(spec, attr, default) if spec is not None else getattr(model, attr, default)


def replicate_frame(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad bottom and right to a multiple (HDRUNet's own padding); the original stays at (0, 0)."""
    pad_h, pad_w = -x.shape[-2] % multiple, -x.shape[-1] % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x, (0, 0)


def tiling_hooks(model: nn.Module) -> TilingHooks:
    """How to tile ``model``: its ``GlobalBranchTiling`` methods (through an ``InferenceModel``'s preparation when
    ``model`` is one), or for a local model replicate framing and plain windows. ``tileable`` is False for a
    global-branch model that does not implement the protocol."""
    align = int(_spec_attr(model, "size_multiple", 1))
    name = str(_spec_attr(model, "name", type(model).__name__))
    device = _device_of(model)
    inner = _unwrap(model)
    if isinstance(inner, GlobalBranchTiling):
        prepare = model.prepared if isinstance(model, InferenceModel) else (lambda fn: fn)
        return TilingHooks(
            inner.tiling_frame,
            prepare(inner.global_context),
            prepare(inner.forward_with_context),
            align,
            True,
            name,
            device,
            has_context=True,
        )
    global_branch = bool(_spec_attr(model, "has_global_branch", False))
    return TilingHooks(
        lambda x: replicate_frame(x, align),
        lambda framed: None,
        lambda window, _: model(window),
        align,
        not global_branch,
        name,
        device,
    )


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


# ----------------------------------------------------------------------------------------------------------------------
# Receptive field and memory, measured on the model


def _gradient_map(hooks: TilingHooks, size: int, block: int, seed: int = 0) -> tuple[torch.Tensor, int]:
    """|d(sum of a block×block output block at the centre)/d input|, summed over channels, on a random input of
    size×size (aligned) drawn with ``seed``. Returns the map and the block's first row/column."""
    generator = torch.Generator().manual_seed(seed)
    with torch.enable_grad(), torch.inference_mode(False):
        # channels-last: oneDNN's fast path, forward and backward (about 3× faster than NCHW on CPU)
        x = torch.rand(1, 3, size, size, generator=generator).to(hooks.device)
        x = x.contiguous(memory_format=torch.channels_last)
        context = hooks.context(x)
        context = context.detach() if isinstance(context, torch.Tensor) else context
        x.requires_grad_(True)
        y = hooks.window(x, context)
        start = (size // 2) // block * block
        y[..., start : start + block, start : start + block].sum().backward()
    return x.grad[0].abs().sum(0), start


@dataclass(frozen=True)
class ReceptiveField:
    """Radii in pixels around an aligned output block. ``exact``: the support of the input gradient (None when it
    exceeds ``RADIUS_CAP``): with this halo, tiles equal the untiled pass up to float rounding. ``effective``: the
    smallest aligned radius outside which at most ``EFFECTIVE_MASS`` of the input-gradient mass lies, measured with
    the model's own weights (the effective receptive field of Luo et al., NeurIPS 2016)."""

    exact: int | None
    effective: int


def receptive_field(model: nn.Module) -> ReceptiveField:
    """Measure the receptive field of ``model`` on a seeded random input. Global branches (``global_context``) are
    held fixed: only the local path is measured. Cached on the model object and on disk (``zoo.probe_cache``, keyed
    by a digest of the architecture and weights), so a model's weights are probed once, not on every call."""
    cached = _RECEPTIVE_FIELDS.get(model)
    if cached is not None:
        return cached
    entry = probe_cache.measured(
        probe_cache.model_digest(_unwrap(model), PROBE_SETTINGS),
        lambda: dataclasses.asdict(_measure_receptive_field(model)),
        lambda entry: isinstance(entry.get("effective"), int),
    )
    result = ReceptiveField(entry.get("exact"), entry["effective"])
    _RECEPTIVE_FIELDS[model] = result
    return result


def _measure_receptive_field(model: nn.Module) -> ReceptiveField:
    hooks = tiling_hooks(_unwrap(model))
    block = hooks.align
    exact = None
    for cap in (32, 96, RADIUS_CAP):
        size = _round_up(2 * cap + block, block) + 2 * block
        for seed in range(PROBE_INPUTS):
            # a ReLU head can clamp the whole block to 0 on one input (the two-stage net at some random inits): no
            # gradient there says nothing about the receptive field, so another input is tried
            grad, start = _gradient_map(hooks, size, block, seed)
            if bool(grad.any()):
                break
        rows = torch.nonzero(grad.sum(1)).flatten()
        cols = torch.nonzero(grad.sum(0)).flatten()
        if len(rows) == 0:  # no input moves the block: the output ignores the input (constant), no context needed
            exact = 0
            break
        if not (rows[0] == 0 or cols[0] == 0 or rows[-1] == size - 1 or cols[-1] == size - 1):
            exact = max(
                start - int(rows[0]),
                int(rows[-1]) - (start + block - 1),
                start - int(cols[0]),
                int(cols[-1]) - (start + block - 1),
                0,
            )
            break
    total = float(grad.sum())
    effective = _round_up(exact, block) if exact is not None else _round_up(cap, block)
    for r in range(0, effective, block):
        inside = float(grad[max(start - r, 0) : start + block + r, max(start - r, 0) : start + block + r].sum())
        if total - inside <= EFFECTIVE_MASS * total:
            effective = r
            break
    if exact is None:
        log.warning(
            "%s: receptive field exceeds %d px; tiling uses the effective radius %d px",
            hooks.name,
            RADIUS_CAP,
            effective,
        )
    del grad
    release_free_memory()  # the gradient probe's activations must not stay resident next to the tiles'
    return ReceptiveField(exact, effective)


def tiling_halo(model: nn.Module, exact: bool = False) -> int:
    """Halo in pixels, rounded up to the size multiple: the measured effective receptive radius (default: tiled
    output within about 1e-5 of untiled, far above 50 dB PSNR; tests/test_tiling.py), or with ``exact=True`` the full
    receptive radius (equal up to float rounding, more compute: HDRUNet 96 px instead of 24)."""
    hooks = tiling_hooks(_unwrap(model))
    align = hooks.align
    field = receptive_field(model)
    if exact and field.exact is None:
        raise ZooError(f"{hooks.name}: receptive field exceeds {RADIUS_CAP} px; no exact halo")
    return _round_up(field.exact if exact else field.effective, align)


class _LiveBytes(TorchDispatchMode):
    """Counts the bytes of the storages created by aten ops that are alive at once (views and in-place results share
    their storage and are counted once), and the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.refs: dict[int, int] = {}

    def _release(self, key: int, nbytes: int) -> None:
        self.refs[key] -= 1
        if self.refs[key] == 0:
            del self.refs[key]
            self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                continue
            storage = t.untyped_storage()
            key, nbytes = storage.data_ptr(), storage.nbytes()
            if key not in self.refs:
                self.refs[key] = 0
                self.live += nbytes
                self.peak = max(self.peak, self.live)
            self.refs[key] += 1
            weakref.finalize(t, self._release, key, nbytes)
        return out


def peak_activation_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes of tensors alive at once while ``fn()`` runs (tensors created inside it only)."""
    counter = _LiveBytes()
    with counter:
        result = fn()
    del result
    return counter.peak


def _probe_bytes_per_pixel(model: nn.Module, cache: weakref.WeakKeyDictionary, context_only: bool) -> float:
    """Peak activation bytes per input pixel on one aligned ``PROBE_SIZE``² input, inference mode: of a window pass
    given a precomputed context, or (``context_only``) of the context pass itself. Cached on the model object and on
    disk (``zoo.probe_cache``, keyed by the model as it runs: an ``InferenceModel`` wrapper's precision and memory
    format included), so a later ``zoo predict`` skips the probe and torch's 2 s import of the dispatch-mode
    machinery it needs."""
    cached = cache.get(model)
    if cached is not None:
        return cached
    runs_as = f"{_device_of(model).type}, {getattr(model, 'precision', 'float32')}, "
    runs_as += f"channels_last {getattr(model, 'channels_last', False)}, {'context' if context_only else 'window'}"
    entry = probe_cache.measured(
        probe_cache.model_digest(model, f"{MEMORY_PROBE_SETTINGS}, {runs_as}"),
        lambda: {"bytes_per_pixel": _measure_bytes_per_pixel(model, context_only)},
        lambda entry: isinstance(entry.get("bytes_per_pixel"), (int, float)),
    )
    per_pixel = float(entry["bytes_per_pixel"])
    cache[model] = per_pixel
    return per_pixel


def _measure_bytes_per_pixel(model: nn.Module, context_only: bool) -> float:
    hooks = tiling_hooks(model)
    size = _round_up(PROBE_SIZE, hooks.align)
    x = torch.rand(1, 3, size, size, device=_device_of(model))
    with torch.inference_mode():
        # one call first: what a model builds once and keeps (SingleHDR's folded resize-conv kernels, 43 MB) is not
        # per-pixel memory, and on a probe this small it would be counted as about 2.7 KB per pixel
        context = hooks.context(x)
        if context_only:
            peak = max(peak_activation_bytes(lambda: hooks.context(x)), 1)
        else:
            hooks.window(x, context)
            peak = peak_activation_bytes(lambda: hooks.window(x, context))
    release_free_memory()
    return peak / (size * size)


def activation_bytes_per_pixel(model: nn.Module) -> float:
    """Peak activation bytes per input pixel of one aligned window (``PROBE_SIZE``²), inference mode. Cached."""
    return _probe_bytes_per_pixel(model, _BYTES_PER_PIXEL, context_only=False)


def context_bytes_per_pixel(model: nn.Module) -> float:
    """Peak activation bytes per input pixel of the global context alone (``GlobalBranchTiling.global_context``:
    SingleHDR's Dequantization- and Linearization-Net, about half the whole model's), inference mode. Cached."""
    return _probe_bytes_per_pixel(model, _CONTEXT_BYTES_PER_PIXEL, context_only=True)


def available_memory() -> int:
    """Bytes of RAM available to new allocations (``MemAvailable`` from /proc/meminfo, else total physical RAM)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_ceiling(device: torch.device | None = None) -> int:
    """The most an automatic plan may use for one window: half the available RAM, or on a CUDA device half its free
    memory (bytes)."""
    if device is not None and device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    return available_memory() // 2


def default_budget(device: torch.device | None = None) -> int:
    """``DEFAULT_BUDGET``, capped at ``memory_ceiling`` (bytes)."""
    return min(DEFAULT_BUDGET, memory_ceiling(device))


# ----------------------------------------------------------------------------------------------------------------------
# Planning and running


def _candidates(length: int, align: int, most: int = 64) -> list[int]:
    """Core sizes worth trying along an axis: for n = 1, 2, … tiles, the smallest aligned core that needs only n."""
    return sorted({_round_up(-(-length // n), align) for n in range(1, min(most, length // align) + 1)})


def choose_plan(height: int, width: int, align: int, halo: int, max_window_pixels: float) -> TilePlan | None:
    """The tiling of a framed height×width image (multiples of ``align``) whose largest window holds at most
    ``max_window_pixels`` and that computes the fewest pixels in all; None when the whole image fits."""
    if height * width <= max_window_pixels:
        return None
    best: tuple[tuple[int, int], TilePlan] | None = None
    for th in _candidates(height, align):
        for tw in _candidates(width, align):
            plan = TilePlan(th, tw, halo, align)
            if plan.largest_window(height, width) > max_window_pixels:
                continue
            key = (plan.computed_pixels(height, width), -(-height // th) * -(-width // tw))
            if best is None or key < best[0]:
                best = (key, plan)
    if best is None:
        core = _round_up(max(halo, align), align)
        log.warning(
            "memory budget allows windows of %.0f px only; using %d px tiles with a %d px halo (slow)",
            max_window_pixels,
            core,
            halo,
        )
        return TilePlan(core, core, halo, align)
    return best[1]


def budgeted_plan(
    height: int, width: int, align: int, halo: int, bytes_per_pixel: float, budget: float, ceiling: float
) -> tuple[TilePlan | None, float]:
    """``choose_plan`` for windows of at most ``budget`` bytes (``SAFETY`` × ``bytes_per_pixel`` per window pixel);
    while that plan computes more than ``MAX_HALO_OVERHEAD`` × the frame's pixels, the budget doubles up to
    ``ceiling``. Returns the plan (None: the frame fits whole) and the budget it used."""
    plan = choose_plan(height, width, align, halo, budget / (SAFETY * bytes_per_pixel))
    # A receptive field that is large against the windows makes them mostly halo (SingleHDR, 160 px: 8× the frame's
    # pixels at 1 GiB): memory is traded for time only where tiling would otherwise be the slow path.
    while plan is not None and plan.overhead(height, width) > MAX_HALO_OVERHEAD and budget < ceiling:
        budget = min(2 * budget, ceiling)
        plan = choose_plan(height, width, align, halo, budget / (SAFETY * bytes_per_pixel))
    return plan, budget


def plan_tiles(
    model: nn.Module,
    height: int,
    width: int,
    tile: int | None = None,
    budget_bytes: int | None = None,
    halo: int | None = None,
    halo_exact: bool = False,
) -> TilePlan | None:
    """How to run ``model`` on a height×width image: None for one untiled pass, else a ``TilePlan``.

    ``tile``: 0 → untiled; N → N×N cores (rounded up to the size multiple); None → automatic: the fewest computed
    pixels whose windows fit ``budget_bytes``; without one, ``default_budget()``, doubled up to ``memory_ceiling()``
    while the halo overhead exceeds ``MAX_HALO_OVERHEAD``. ``halo``: None → ``tiling_halo(model, halo_exact)``; an
    explicit number of pixels otherwise. A global-branch model without the tiling protocol runs
    untiled (an explicit ``tile`` raises ``ZooError``).
    """
    hooks = tiling_hooks(_unwrap(model))
    if tile is not None and tile < 0:
        raise ZooError(f"tile size must be >= 0 (0 = no tiling), got {tile}")
    if halo is not None and halo < 0:
        raise ZooError(f"halo must be >= 0, got {halo}")
    if tile == 0:
        return None
    if not hooks.tileable:
        if tile is not None:
            raise ZooError(
                f"model {hooks.name!r} has a global branch and does not provide global_context/forward_with_context, "
                "so it cannot be tiled; use --tile 0"
            )
        return None
    framed_h, framed_w = framed_size(hooks, height, width)

    def context() -> int:  # measured only once tiling is decided: the probe costs more than a small image's pass
        return tiling_halo(model, halo_exact) if halo is None else _round_up(halo, hooks.align)

    if tile is not None:
        core = _round_up(tile, hooks.align)
        if core >= framed_h and core >= framed_w:
            return None
        return TilePlan(min(core, framed_h), min(core, framed_w), context(), hooks.align)
    device = _device_of(model)
    budget = default_budget(device) if budget_bytes is None else budget_bytes
    ceiling = memory_ceiling(device) if budget_bytes is None else budget_bytes
    per_pixel = activation_bytes_per_pixel(model)
    if per_pixel == 0:  # creates no tensors (identity): nothing to bound
        return None
    if framed_h * framed_w <= budget / (SAFETY * per_pixel):
        return None
    plan, budget = budgeted_plan(framed_h, framed_w, hooks.align, context(), per_pixel, budget, ceiling)
    if plan is None or not hooks.has_context:
        return plan
    return dataclasses.replace(plan, context_pixels=budget / (SAFETY * context_bytes_per_pixel(model)))


def framed_size(hooks: TilingHooks, height: int, width: int) -> tuple[int, int]:
    """(H', W') of the frame the model really runs on (its own padding included), computed on an empty batch (no
    memory, 0.4 ms); on the meta device where the frame function refuses an empty batch (torch's first meta op costs
    about 1 s)."""
    try:
        framed, _ = hooks.frame(torch.empty(0, 3, height, width))
    except RuntimeError:
        framed, _ = hooks.frame(torch.empty(1, 3, height, width, device="meta"))
    return int(framed.shape[-2]), int(framed.shape[-1])


def context_size(height: int, width: int, plan: TilePlan) -> tuple[int, int]:
    """(H, W) of the image the global context is computed on, for a framed height×width image: the frame itself when
    it fits ``plan.context_pixels``, else the frame scaled down to fit, each side a multiple of the size multiple."""
    if plan.context_pixels is None or height * width <= plan.context_pixels:
        return height, width
    scale = math.sqrt(plan.context_pixels / (height * width))
    rows, cols = (max(plan.align, int(side * scale) // plan.align * plan.align) for side in (height, width))
    return rows, cols


def context_input(framed: torch.Tensor, plan: TilePlan) -> torch.Tensor:
    """The image the global context is computed on (``context_size``): ``framed`` itself, or ``framed`` downscaled by
    area averaging."""
    size = context_size(*framed.shape[-2:], plan)
    return framed if size == tuple(framed.shape[-2:]) else F.interpolate(framed, size=size, mode="area")


def tiled_forward(model: nn.Module, x: torch.Tensor, plan: TilePlan) -> torch.Tensor:
    """``model(x)`` computed window by window: x (B, 3, H, W) → output (B, C, H, W). The global context (if any) is
    computed once, on the whole framed image or, beyond ``plan.context_pixels``, on it downscaled."""
    hooks = tiling_hooks(model)
    if not hooks.tileable:
        raise ZooError(f"model {hooks.name!r} has a global branch and no tiling protocol; it cannot be tiled")
    height, width = x.shape[-2:]
    framed, (top, left) = hooks.frame(x)
    context = hooks.context(context_input(framed, plan)) if hooks.has_context else None
    output: torch.Tensor | None = None
    for core_rows, core_cols, win_rows, win_cols in plan.windows(*framed.shape[-2:]):
        y = hooks.window(framed[..., win_rows, win_cols], context)
        if output is None:
            output = y.new_empty((*y.shape[:-2], *framed.shape[-2:]))
        rows = slice(core_rows.start - win_rows.start, core_rows.stop - win_rows.start)
        cols = slice(core_cols.start - win_cols.start, core_cols.stop - win_cols.start)
        output[..., core_rows, core_cols] = y[..., rows, cols]
        del y
    assert output is not None
    return output[..., top : top + height, left : left + width]


def run_model(
    model: nn.Module,
    x: torch.Tensor,
    tile: int | None = None,
    budget_bytes: int | None = None,
    halo: int | None = None,
    halo_exact: bool = False,
) -> torch.Tensor:
    """``model(x)``, tiled when ``plan_tiles`` says so. x: (1, 3, H, W) sRGB LDR in [0, 1]; output in the model's
    native domain, same H×W."""
    plan = plan_tiles(model, x.shape[-2], x.shape[-1], tile, budget_bytes, halo, halo_exact)
    if plan is None:
        return model(x)
    log.debug("tiling %dx%d with cores %dx%d, halo %d", x.shape[-1], x.shape[-2], plan.tile_w, plan.tile_h, plan.halo)
    return tiled_forward(model, x, plan)


def _unwrap(model: nn.Module) -> nn.Module:
    """The module an ``InferenceModel`` wraps (gradients and probes need the plain module), else ``model``."""
    return getattr(model, "wrapped", model)


def _device_of(model: nn.Module) -> torch.device:
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")
