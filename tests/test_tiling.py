"""Tiled inference (zoo.tiling): tiles cover the image exactly, the halo covers the receptive field, tiled output equals
untiled output for every registered model, and global branches are computed once on the whole image."""

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo
from zoo import probe_cache, tiling
from zoo.errors import ZooError
from zoo.tileable import GlobalBranchTiling

HEIGHT, WIDTH = 97, 141  # odd, not a multiple of 4 or 32: exercises framing and clamped edge windows


def psnr(reference: torch.Tensor, result: torch.Tensor) -> float:
    mse = float(((reference - result) ** 2).mean())
    peak = float(reference.abs().max())
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


@pytest.mark.parametrize(
    "height,width,tile,halo", [(97, 141, 32, 12), (64, 64, 64, 8), (260, 36, 20, 0), (5, 300, 4, 30)]
)
def test_cores_partition_the_image_and_equal_windows_add_the_halo(height, width, tile, halo):
    plan = tiling.TilePlan(tile, tile, halo, align=1)
    covered = torch.zeros(height, width, dtype=torch.int32)
    computed, sizes = 0, set()
    for core_rows, core_cols, win_rows, win_cols in plan.windows(height, width):
        covered[core_rows, core_cols] += 1
        assert 0 <= win_rows.start and win_rows.stop <= height and 0 <= win_cols.start and win_cols.stop <= width
        # the window holds the core plus `halo` pixels of context wherever the image has them
        assert win_rows.start <= max(core_rows.start - halo, 0) and win_rows.stop >= min(core_rows.stop + halo, height)
        assert win_cols.start <= max(core_cols.start - halo, 0) and win_cols.stop >= min(core_cols.stop + halo, width)
        computed += (win_rows.stop - win_rows.start) * (win_cols.stop - win_cols.start)
        sizes.add((win_rows.stop - win_rows.start, win_cols.stop - win_cols.start))
    assert bool((covered == 1).all())
    assert len(sizes) == 1  # one window shape: oneDNN primitives and freed memory are reused
    assert computed == plan.computed_pixels(height, width)


def test_receptive_field_of_a_known_network():
    # three 3×3 convs and a 5×5 conv: radius 1 + 1 + 1 + 2 = 5
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.Conv2d(4, 3, 5, padding=2),
    )
    field = tiling.receptive_field(net)
    assert field.exact == 5 and 0 <= field.effective <= 5


def _five_conv_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*(nn.Conv2d(3, 3, 5, padding=2) for _ in range(5))).eval()  # exact radius 10


def test_the_receptive_field_is_measured_once_per_weights_across_processes(tmp_path, monkeypatch):
    # the disk cache (zoo.probe_cache) stands in for a later `zoo predict` process: a new model object with the same
    # weights reads the stored field instead of probing; other weights are probed again
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    measured = []
    measure = tiling._measure_receptive_field
    monkeypatch.setattr(tiling, "_measure_receptive_field", lambda model: measured.append(model) or measure(model))
    net = _five_conv_net()
    first = tiling.receptive_field(net)
    assert first.exact == 10 and len(measured) == 1 and (tmp_path / "probes.json").is_file()
    same_weights = _five_conv_net()  # a new object: the in-process cache does not know it
    assert tiling.receptive_field(zoo.optimize_for_inference(same_weights)) == first and len(measured) == 1
    with torch.no_grad():
        same_weights[0].weight[0, 0, 0, 0] += 1.0
    tiling.receptive_field(same_weights)
    assert len(measured) == 2  # changed weights: a new key, measured again


def test_activation_bytes_are_measured_once_per_weights_and_settings_across_processes(tmp_path, monkeypatch):
    # like the receptive field: a new object with the same weights (a later `zoo predict`) reads the stored figure;
    # the same weights run another way (bfloat16 autocast) are another key, measured again
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    measured = []
    measure = tiling._measure_bytes_per_pixel
    monkeypatch.setattr(tiling, "_measure_bytes_per_pixel", lambda *a: measured.append(a) or measure(*a))
    first = tiling.activation_bytes_per_pixel(zoo.optimize_for_inference(_five_conv_net()))
    assert len(measured) == 1 and first > 0
    assert tiling.activation_bytes_per_pixel(zoo.optimize_for_inference(_five_conv_net())) == first
    assert len(measured) == 1
    tiling.activation_bytes_per_pixel(zoo.optimize_for_inference(_five_conv_net(), precision="bfloat16"))
    assert len(measured) == 2
    assert sum("bytes_per_pixel" in e for e in json.loads((tmp_path / "probes.json").read_text()).values()) == 2


def test_the_probe_key_follows_the_model_code(tmp_path, monkeypatch):
    # a cached figure must not outlive the forward code it was measured on: the digest reads the classes' sources
    module_file = tmp_path / "probe_key_net.py"
    module_file.write_text("from torch import nn\n\nclass Net(nn.Conv2d):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import probe_key_net

    net = probe_key_net.Net(3, 3, 3)
    before = probe_cache.model_digest(net, "settings")
    assert probe_cache.model_digest(net, "settings") == before
    module_file.write_text("from torch import nn\n\nclass Net(nn.Conv2d):\n    pass  # changed\n")
    assert probe_cache.model_digest(net, "settings") != before


def test_a_corrupt_probe_cache_is_ignored_and_rewritten(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    (tmp_path / "probes.json").write_text("{not json")
    assert tiling.receptive_field(_five_conv_net()).exact == 10
    assert "unreadable probe cache" in caplog.text
    assert len(json.loads((tmp_path / "probes.json").read_text())) == 1


def test_an_unwritable_probe_cache_leaves_the_result_uncached(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(blocker / "cache"))  # a folder cannot be made under a file
    assert tiling.receptive_field(_five_conv_net()).exact == 10


def test_a_halo_heavy_plan_takes_a_larger_default_budget(monkeypatch):
    # windows of a few thousand pixels with a 12 px halo compute several times the image: the automatic plan doubles
    # the default budget (up to the memory ceiling) until the halo costs at most MAX_HALO_OVERHEAD
    net = _five_conv_net()
    per_pixel = tiling.activation_bytes_per_pixel(net)
    small = int(per_pixel * tiling.SAFETY * 40 * 40)  # 40×40 windows: mostly halo
    monkeypatch.setattr(tiling, "DEFAULT_BUDGET", small)
    explicit = tiling.plan_tiles(net, 200, 300, budget_bytes=small)  # an explicit budget is a hard limit
    assert explicit is not None and explicit.overhead(200, 300) > tiling.MAX_HALO_OVERHEAD
    automatic = tiling.plan_tiles(net, 200, 300)
    assert automatic is None or automatic.overhead(200, 300) <= tiling.MAX_HALO_OVERHEAD
    monkeypatch.setattr(tiling, "memory_ceiling", lambda device=None: small)  # no room to grow: the small plan
    assert tiling.plan_tiles(net, 200, 300) == explicit
    x = torch.rand(1, 3, 200, 300)
    with torch.no_grad():
        assert torch.allclose(tiling.run_model(net, x), net(x), atol=1e-5)


def test_activation_bytes_of_a_single_conv():
    # one 3→64 conv: its float32 output, 256 bytes per pixel, is the only tensor the forward creates
    net = nn.Conv2d(3, 64, 3, padding=1).eval()
    assert tiling.activation_bytes_per_pixel(net) == pytest.approx(256, rel=0.01)


def test_singlehdr_inference_holds_no_concatenated_skip_or_whole_feature_map():
    """SingleHDR's inference peak per pixel, as the tiler counts it: the Hallucination-Net's full-resolution skip fused
    without a 128-channel concatenation, its resize-conv phases one at a time with BatchNorm in place, and the
    Linearization-Net's 102-channel map freed after conv1 (before: 1576 and 980 bytes per pixel; now about 970 and
    530). A smaller count is what lets the same memory hold larger windows, with less halo recomputed."""
    model = zoo.optimize_for_inference(zoo.create_model("singlehdr").eval())
    assert tiling._measure_bytes_per_pixel(model, context_only=False) < 1100
    assert tiling._measure_bytes_per_pixel(model, context_only=True) < 600


def test_choose_plan_fits_the_budget_and_none_when_the_image_fits():
    assert tiling.choose_plan(100, 100, 4, 8, max_window_pixels=100 * 100) is None
    plan = tiling.choose_plan(1060, 1900, 4, 96, max_window_pixels=600_000)
    assert plan is not None and plan.tile_h % 4 == 0 and plan.tile_w % 4 == 0
    sizes = [(r.stop - r.start) * (c.stop - c.start) for _, _, r, c in plan.windows(1060, 1900)]
    assert max(sizes) == plan.largest_window(1060, 1900) <= 600_000
    # no other core size computes fewer pixels within the budget (exhaustive over aligned cores, coarse grid)
    for th in range(4, 1061, 24):
        for tw in range(4, 1901, 24):
            other = tiling.TilePlan(th, tw, 96, 4)
            if other.largest_window(1060, 1900) <= 600_000:
                assert other.computed_pixels(1060, 1900) >= plan.computed_pixels(1060, 1900)


@pytest.mark.parametrize("name", zoo.list_models())
def test_tiled_equals_untiled(name):
    torch.manual_seed(0)  # the same random weights whatever ran before
    model = zoo.create_model(name).eval()
    if not tiling.tiling_hooks(model).tileable:
        pytest.skip(f"{name} has a global branch but no global_context/forward_with_context (zoo/tiling.py protocol)")
    x = torch.rand(1, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(1))
    align = tiling.tiling_hooks(model).align
    tile = max(align, 64)
    # SingleHDR's windows (64 px + 2 × its 160 px halo) cover its whole padded frame whatever the halo: an explicit
    # one skips the receptive-field probe (a 608² backward pass, ~1 min on a loaded CI), which the slow seam test runs
    halo = 96 if align >= 32 else None
    plan = tiling.plan_tiles(model, HEIGHT, WIDTH, tile=tile, halo=halo)
    assert plan is not None and len(plan.windows(*tiling.framed_size(tiling.tiling_hooks(model), HEIGHT, WIDTH))) > 1
    with torch.inference_mode():
        untiled = model(x)
        tiled = tiling.tiled_forward(model, x, plan)
    assert tiled.shape == untiled.shape
    value = psnr(untiled, tiled)
    error = float((tiled - untiled).abs().max())
    print(f"{name}: halo {plan.halo} px, tiled vs untiled PSNR {value:.1f} dB, max abs {error:.2e}")
    assert value >= 50


def test_a_block_clamped_to_zero_on_one_input_does_not_make_the_receptive_field_zero():
    """At this random init the two-stage net's ReLU head outputs 0 at the probe's centre pixel for the first seeded
    input, so that input's gradient is all zero; the probe tries further inputs instead of calling the output
    constant (which gave a 0 px halo and 33 dB seams)."""
    torch.manual_seed(33)
    model = zoo.create_model("twostage").eval()
    hooks = tiling.tiling_hooks(model)
    grad, _ = tiling._gradient_map(hooks, tiling._round_up(2 * 32 + hooks.align, hooks.align) + 2 * hooks.align, 1)
    assert not grad.any()  # the premise: the first input moves nothing
    field = tiling._measure_receptive_field(model)
    assert field.exact is not None and field.exact > 0 and field.effective > 0


def test_global_branch_model_without_protocol_is_not_tiled():
    global_models = [n for n in zoo.list_models() if zoo.get_spec(n).has_global_branch]
    if not global_models:
        pytest.skip("no registered model has a global branch")
    model = zoo.create_model(global_models[0])
    if tiling.tiling_hooks(model).tileable:
        pytest.skip(f"{global_models[0]} implements the tiling protocol")
    assert tiling.plan_tiles(model, 4000, 6000) is None  # automatic: untiled
    with pytest.raises(ZooError, match="global branch"):
        tiling.plan_tiles(model, 4000, 6000, tile=256)


class GlobalTint(nn.Module, GlobalBranchTiling):
    """A small real network with a global branch, implementing the tiling protocol: two 3×3 convs, plus the image's
    mean colour (over the whole framed image) added to every pixel. Pads symmetrically by 3 pixels, like a model whose
    padding is not anchored at the top-left corner."""

    size_multiple = 2

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
        self.context_calls = 0

    def tiling_frame(self, x):
        pad_h, pad_w = -(x.shape[-2] + 6) % 2, -(x.shape[-1] + 6) % 2
        return nn.functional.pad(x, (3, 3 + pad_w, 3, 3 + pad_h), mode="reflect"), (3, 3)

    def global_context(self, framed):
        self.context_calls += 1
        return framed.mean(dim=(2, 3), keepdim=True)

    def forward_with_context(self, window, context):
        return self.body(window) + context

    def forward(self, x):
        framed, (top, left) = self.tiling_frame(x)
        y = self.forward_with_context(framed, self.global_context(framed))
        return y[..., top : top + x.shape[-2], left : left + x.shape[-1]]


def test_protocol_model_tiles_exactly_with_one_global_context():
    model = GlobalTint().eval()
    x = torch.rand(1, 3, 45, 71, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        untiled = model(x)
        plan = tiling.plan_tiles(model, 45, 71, tile=16)  # measures the halo (one probe of the local path)
        model.context_calls = 0
        tiled = tiling.tiled_forward(model, x, plan)
    assert plan.halo == 2 and len(plan.windows(52, 78)) > 4
    assert model.context_calls == 1
    assert torch.allclose(tiled, untiled, atol=1e-6)


def test_automatic_tiling_under_a_small_budget_matches_untiled():
    model = zoo.create_model("twostage").eval()
    x = torch.rand(1, 3, 61, 83, generator=torch.Generator().manual_seed(3))
    budget = int(tiling.activation_bytes_per_pixel(model) * tiling.SAFETY * 60 * 60)  # windows of ≤ 3600 px
    plan = tiling.plan_tiles(model, 61, 83, budget_bytes=budget)
    assert plan is not None
    with torch.inference_mode():
        assert torch.allclose(tiling.run_model(model, x, budget_bytes=budget), model(x), atol=1e-5)


def test_negative_tile_is_refused():
    with pytest.raises(ZooError, match="tile"):
        tiling.plan_tiles(zoo.create_model("identity"), 10, 10, tile=-1)


def test_exact_halo_equals_untiled_up_to_rounding():
    model = zoo.create_model("twostage").eval()
    field = tiling.receptive_field(model)
    assert field.exact is not None and field.effective <= field.exact
    x = torch.rand(1, 3, 57, 75, generator=torch.Generator().manual_seed(4))
    plan = tiling.plan_tiles(model, 57, 75, tile=24, halo_exact=True)
    assert plan.halo >= field.exact
    with torch.inference_mode():
        assert float((tiling.tiled_forward(model, x, plan) - model(x)).abs().max()) <= 1e-5


SEAM_BOUND = 1e-4  # max |tiled − untiled| at the default (effective) halo, relative to the untiled peak


@pytest.mark.parametrize("weights", ["random", "shipped"])
@pytest.mark.parametrize(
    "name",
    ["hdrunet", "twostage", pytest.param("singlehdr", marks=pytest.mark.slow)],  # singlehdr: minutes
)
def test_multi_window_tiling_has_no_seam(name, weights):
    """At least 4×4 windows, each smaller than the image, at the default halo: the error is bounded everywhere and
    in particular on the rows and columns next to every core boundary (where a seam would show)."""
    torch.manual_seed(0)
    model = zoo.create_model(name, pretrained=weights == "shipped").eval()
    align = tiling.tiling_hooks(model).align
    halo = tiling.tiling_halo(model)
    tile = -(-max(32, 2 * halo // 3 + align) // align) * align  # a window (tile + 2·halo) smaller than 4 tiles
    size = 4 * tile  # 4×4 cores
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(5)) ** 2
    plan = tiling.plan_tiles(model, size, size, tile=tile)
    framed_h, framed_w = tiling.framed_size(tiling.tiling_hooks(model), size, size)
    windows = plan.windows(framed_h, framed_w)
    assert len(windows) >= 16 and all((w.stop - w.start) < framed_h for _, _, w, _ in windows), (halo, align)
    with torch.inference_mode():
        untiled, tiled = model(x), tiling.tiled_forward(model, x, plan)
    error = (tiled - untiled).abs()[0].amax(dim=0) / untiled.abs().max()
    top, left = tiling.tiling_hooks(model).frame(x)[1]  # core boundaries of the frame, in image rows/columns
    starts = {r.start - top for r, _, _, _ in windows if 0 < r.start - top < size}
    starts |= {c.start - left for _, c, _, _ in windows if 0 < c.start - left < size}
    seams = sorted(starts | {s - 1 for s in starts})
    assert seams and float(error.max()) <= SEAM_BOUND, (name, weights, halo, float(error.max()))
    assert float(error[seams].max()) <= SEAM_BOUND and float(error[:, seams].max()) <= SEAM_BOUND


def test_frame_size_of_a_frame_function_that_refuses_an_empty_batch():
    """framed_size evaluates the frame on an empty batch; a frame function that cannot take one (a reflect pad does
    not) is evaluated on the meta device instead, with the same answer."""

    def reflect_to_32(x):
        if x.shape[0] == 0:
            raise RuntimeError("reflect padding needs a non-empty batch")
        return F.pad(x, (0, -x.shape[-1] % 32, 0, -x.shape[-2] % 32), mode="reflect"), (0, 0)

    hooks = dataclasses.replace(tiling.tiling_hooks(zoo.create_model("twostage")), frame=reflect_to_32)
    assert tiling.framed_size(hooks, 100, 70) == (128, 96)


def test_windows_are_planned_on_the_frame_the_model_runs():
    """SingleHDR pads 32 px symmetrically and rounds up to 32: a 1900×1060 photo runs as 1984×1152, and the cores
    partition that frame, not the photo rounded up to 32 (1920×1088). Under a budget that cannot hold the context
    pass on the whole frame, the context gets a pixel limit below the frame's."""
    model = zoo.create_model("singlehdr").eval()
    hooks = tiling.tiling_hooks(model)
    assert tiling.framed_size(hooks, 1060, 1900) == (1152, 1984)
    budget = int(tiling.activation_bytes_per_pixel(model) * tiling.SAFETY * 200_000)  # windows of ≤ 200k px
    plan = tiling.plan_tiles(model, 1060, 1900, budget_bytes=budget, halo=64)
    cores = plan.windows(1152, 1984)
    rows = sorted({(r.start, r.stop) for r, _, _, _ in cores})
    cols = sorted({(c.start, c.stop) for _, c, _, _ in cores})
    assert rows[0][0] == 0 and rows[-1][1] == 1152 and all(a[1] == b[0] for a, b in zip(rows, rows[1:]))
    assert cols[0][0] == 0 and cols[-1][1] == 1984 and all(a[1] == b[0] for a, b in zip(cols, cols[1:]))
    assert plan.context_pixels is not None and plan.context_pixels < 1152 * 1984
    assert plan.context_pixels == pytest.approx(budget / (tiling.SAFETY * tiling.context_bytes_per_pixel(model)))


CONTEXT_PSNR_BOUND = 40.0  # dB (peak: the untiled output's), context on a quarter of the pixels; measured 45–60 dB


def test_reduced_resolution_context_on_the_shipped_singlehdr():
    """The one approximation of tiling: SingleHDR's response curve computed on the frame downscaled to fit the budget.
    Measured on real evaluation scenes with the shipped weights: with the whole frame the output equals the untiled
    one; with a quarter of its pixels it stays within ``CONTEXT_PSNR_BOUND``."""
    from zoo.data import DataConfig, build_dataset

    model = zoo.create_model("singlehdr", pretrained=True).eval()
    scenes = build_dataset(DataConfig(name="real", eval_height=None, eval_width=None), "eval")
    hooks = tiling.tiling_hooks(model)
    for index in range(2):
        x = scenes[index]["ldr"][None]
        fh, fw = tiling.framed_size(hooks, *x.shape[-2:])
        with torch.inference_mode():
            untiled = model(x)
            whole = tiling.tiled_forward(model, x, tiling.TilePlan(fh, fw, 0, 32, context_pixels=fh * fw))
            quarter = tiling.tiled_forward(model, x, tiling.TilePlan(fh, fw, 0, 32, context_pixels=fh * fw / 4))
        assert float((whole - untiled).abs().max()) <= 1e-5 * float(untiled.abs().max())
        assert psnr(untiled, quarter) >= CONTEXT_PSNR_BOUND, psnr(untiled, quarter)
