"""Inference and training speed of every registered model: latency, peak memory, GFLOP/s against the machine's GEMM.

    python benchmarks/speed.py [--quick] [--threads 2] [--compile] [--max-seconds 600] [--models NAME ...]

Writes to results/bench/ (``--quick``: ``*_quick.csv``, small sizes only) and prints the tables:

- ``speed.csv``: per learned model (``zoo.list_models(include_baselines=False)``), size (256×384, 1900×1060,
  3840×2160) and mode:
  ``reference``: the plain model as the official scripts run it (NCHW, ``torch.no_grad``, untiled, default malloc);
  ``optimized``: ``zoo.optimize_for_inference`` + ``zoo.malloc.reuse_freed_memory``, untiled;
  ``tiled``: optimized + ``zoo.tiling`` with the automatic budget and default halo (exactly what ``zoo predict`` does);
  ``tiled_exact``: the same with the exact halo (1900×1060 only);
  ``tiled_1gib``: tiled under an explicit 1 GiB budget (``--memory-budget 1024``, a hard limit), where the automatic
  plan takes more (a halo-heavy model: SingleHDR), 1900×1060 only;
  ``tiled_bf16``: ``zoo predict --precision bfloat16`` (bf16 autocast, the spec's ``float32_modules`` in float32,
  the automatic plan on bf16 activation bytes, untiled where the frame fits one window), 1900×1060 only, on CPUs with
  native bf16 (``torch.ops.mkldnn._is_mkldnn_bf16_supported``); its GFLOP/s and ``pct_gemm`` are against the float32
  GEMM, so they may pass 100 %. What bf16 costs in quality: benchmarks/precision.py (``precision.csv``).
  Every configuration runs ``--rounds`` times (default 3), each in a fresh subprocess, the configurations interleaved
  round by round; its peak RSS is the worker's ``VmHWM`` (interpreter, torch, weights, image buffers, activations),
  the largest of the rounds. Seconds: the median of the rounds (``seconds_min``/``seconds_max`` their spread) of one
  cold forward per worker at the large sizes, best of 3 at 256×384; the tiler's probes (receptive field, bytes per
  pixel) are timed apart: ``probe_s`` in round 1 (the run starts on an empty probe cache: a model's first tiled
  configuration measures, the others read it), ``probe_cached_s`` in later rounds, the results read from the cache
  (``zoo.probe_cache``: what a second ``zoo predict`` pays, and what the speed-up goal adds to the tiled forward).
  Configurations predicted to exceed 80 % of the available RAM or ``--max-seconds`` are skipped and say so.
  GFLOP/s = conv/matmul FLOPs actually computed (``torch.utils.flop_counter.FlopCounterMode`` at two small sizes,
  scaled by pixels, halo overhead and a global context pass included) / seconds; ``pct_gemm``: against a 4096³
  float32 matmul timed at the start and end of the run.
- ``speed_variants.csv``: which inference paths help on this CPU, per model at 256×384: eager NCHW, inference mode,
  channels-last (``optimize_for_inference``'s default), + ``torch.jit.freeze``, ``torch.jit.optimize_for_inference``
  (MKLDNN), bf16 autocast, and with ``--compile`` ``torch.compile``; best of 3 rounds after a warm-up, the paths
  interleaved round-robin so load from other processes hits them alike; max abs difference to eager float32.
- ``speed_tiling.csv``: tiled vs untiled output (PSNR, max abs) at 256×384 with 128-px tiles, default and exact halo.
- ``speed_train.csv``: seconds per training step of every recipe stage (all its objectives: forward, loss, backward,
  Adam) on synthetic batches of 4 × 128² (``--quick``: 2 × 64²).
- ``speed_goals.csv``: the performance goals (``SPEEDUP_GOAL``, ``RSS_SHARE_GOAL``, ``UHD_RSS_GOAL_GB``,
  ``THROUGHPUT_GOAL``) against the measured rows.

Every CSV has the columns ``COLUMNS`` declares, then the run's ``RUN_FIELDS``: the machine, the commit and command
that produced it, when, the 1-minute load average at the start and end, and ``others_cpu_pct``, the share of one core
that other processes used during the whole run (from /proc/stat minus this process and its workers). Figures are
written to results/bench only when that share is at most ``QUIET_OTHERS_PCT`` (``--allow-load`` overrides, the share
is recorded either way). Rows also record the load before and after them and the CPU seconds they used (``cpu_s``).
"""

from __future__ import annotations

import argparse
import csv
import io as text_io
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

OUT_DIR = Path(__file__).resolve().parents[1] / "results" / "bench"
SIZES = ((256, 384), (1060, 1900), (2160, 3840))  # (height, width)
QUICK_SIZES = ((256, 384),)
MODES = ("reference", "optimized", "tiled", "tiled_exact", "tiled_1gib", "tiled_bf16")
EXACT_SIZE = (1060, 1900)  # tiled_exact, tiled_1gib and tiled_bf16 are measured at this size only
# the variants-table row whose seconds per pixel predict a mode's time (the default: channels-last float32)
VARIANT_OF_MODE = {"reference": "eager NCHW, no_grad (official path)", "tiled_bf16": "channels-last + bf16 autocast"}
FIXED_BUDGET = 1 << 30  # tiled_1gib: the explicit budget (bytes)
MEMORY_SHARE = 0.8  # skip configurations predicted to need more than this share of the available RAM
SPEEDUP_GOAL = 3.0  # zoo predict's path vs the reference path at 1900×1060 (seconds ratio)
RSS_SHARE_GOAL = 1 / 3  # its peak RSS against the reference path's
UHD_RSS_GOAL_GB = 3.0
THROUGHPUT_GOAL = 0.70
VARIANT_ROUNDS = 3
QUIET_OTHERS_PCT = 10.0  # other processes may use at most this share of one core while figures go to results/bench

# The columns of every CSV this benchmark writes, in order (tests/test_bench_schema.py checks the committed files
# against them): each row's own fields, then the run's (RUN_FIELDS: machine, commit, command, load).
RUN_FIELDS = (
    "threads",
    "gemm_gflops",
    "host",
    "torch",
    "git_commit",
    "command",
    "measured_utc",
    "load_start",
    "load_end",
    "others_cpu_pct",
)
COLUMNS = {
    "speed": (
        "model",
        "size",
        "mode",
        "predicted_s",
        "status",
        "seconds",
        "seconds_min",
        "seconds_max",
        "runs",
        "cpu_s",
        "probe_s",
        "probe_cached_s",
        "load_before",
        "load_after",
        "tiles",
        "windows",
        "window_px",
        "computed_px",
        "context_px",
        "peak_rss_mb",
        "base_rss_mb",
        "useful_gflop",
        "computed_gflop",
        "gflops",
        "pct_gemm",
        "predicted_peak_mb",
        "note",
    ),
    "speed_variants": (
        "model",
        "size",
        "variant",
        "seconds",
        "cpu_s",
        "speedup",
        "max_abs_error",
        "load_before",
        "load_after",
        "note",
    ),
    "speed_train": (
        "model",
        "stage",
        "objectives",
        "batch",
        "seconds",
        "samples_per_s",
        "cpu_s",
        "load_before",
        "note",
    ),
    "speed_tiling": (
        "model",
        "size",
        "tile",
        "halo_effective",
        "halo_exact",
        "psnr_db_effective",
        "max_abs_effective",
        "psnr_db_exact",
        "max_abs_exact",
    ),
    "speed_goals": ("goal", "measured", "met"),
}


# ----------------------------------------------------------------------------------------------------------------------
# Machine


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def busy_seconds() -> float:
    """CPU seconds all processes of the machine spent busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this process and of its finished children (the benchmark's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class OtherProcesses:
    """How much CPU the rest of the machine used while the benchmark ran, as a share of one core (%): what says
    whether the figures were taken on a quiet machine."""

    def __init__(self) -> None:
        self.busy, self.own, self.wall = busy_seconds(), own_seconds(), time.perf_counter()

    def percent(self) -> float:
        others = (busy_seconds() - self.busy) - (own_seconds() - self.own)
        return round(100 * max(others, 0.0) / max(time.perf_counter() - self.wall, 1e-9), 1)


def rss_bytes(field: str = "VmRSS") -> int:
    """Resident memory of this process now (``VmRSS``) or its peak (``VmHWM``), bytes. ``VmHWM`` rather than
    ``ru_maxrss``: after fork + exec, Linux reports the parent's RSS at fork time in ``ru_maxrss`` when that is
    larger, which would charge the benchmark driver's memory to every worker."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    return 0


def native_bf16() -> bool:
    """Whether oneDNN runs bf16 convolutions natively on this CPU (AVX-512 BF16 or AMX), not emulated."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def host_description() -> str:
    """Machine name, architecture, CPU count and the vector ISA torch dispatches to (AVX2 and AVX-512 machines of
    the same name differ by 1.5× in GEMM throughput and far more in bf16)."""
    isa = torch.backends.cpu.get_cpu_capability()
    return f"{platform.node()} {platform.processor() or platform.machine()} ({os.cpu_count()} CPUs, {isa})"


def gemm_gflops(n: int = 4096, repeats: int = 3) -> float:
    """Best float32 GEMM throughput of an n×n×n matmul, GFLOP/s (2n³ FLOPs)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeats):
        tic = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - tic)
    return 2 * n**3 / best / 1e9


def run_fields(
    script: str, argv: list[str], threads: int, gemm: float, host: str, load_start: float, others: float
) -> dict[str, Any]:
    """``RUN_FIELDS`` of one benchmark run of ``benchmarks/<script>`` with arguments ``argv``."""
    from zoo.results import git_commit

    return {
        "threads": threads,
        "gemm_gflops": round(gemm, 1),
        "host": host,
        "torch": torch.__version__,
        "git_commit": git_commit(),
        "command": " ".join(["python", f"benchmarks/{script}", *argv]),
        "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_start": load_start,
        "load_end": load1(),
        "others_cpu_pct": others,
    }


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark shares: its thread count, where its CSVs go, and the override of the load check."""
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="folder for the CSV files")
    parser.add_argument(
        "--allow-load",
        action="store_true",
        help=f"write to results/bench even if other processes used > {QUIET_OTHERS_PCT:.0f} %% of a core",
    )


def finish_run(
    script: str,
    argv: list[str],
    args: argparse.Namespace,
    measured: tuple[float, str, float, OtherProcesses],
    tables: dict[str, list[dict[str, Any]]],
    columns: dict[str, tuple[str, ...]] = COLUMNS,
    suffix: str = "",
) -> float:
    """End a benchmark run of ``benchmarks/<script>``: ``measured`` = (GEMM GFLOP/s, host, load at the start, the
    meter of other processes). Refuses figures taken under load, else writes ``tables`` with the run's fields.
    Returns the share of a core other processes used."""
    gemm, host, load_start, machine = measured
    others = machine.percent()
    extra = run_fields(script, argv, args.threads, gemm, host, load_start, others)
    refuse_if_loaded(others, args.out_dir, args.allow_load)
    write_tables(args.out_dir, suffix, tables, extra, columns)
    return others


def refuse_if_loaded(others: float, out_dir: Path, allow_load: bool) -> None:
    """Stop before figures taken under load (``others`` % of a core used by other processes) reach results/bench."""
    if others > QUIET_OTHERS_PCT and out_dir == OUT_DIR and not allow_load:
        raise SystemExit(
            f"other processes used {others:.0f} % of a core during the run (> {QUIET_OTHERS_PCT:.0f} %): "
            "figures taken under load are not written to results/bench (--allow-load writes them, "
            "recording the share; --out-dir writes elsewhere)"
        )


# ----------------------------------------------------------------------------------------------------------------------
# One configuration, in a fresh process


def worker(config: dict[str, Any]) -> dict[str, Any]:
    """Run one (model, size, mode) configuration in this (fresh) process and return its measurements."""
    import zoo
    from zoo import tiling
    from zoo.malloc import reuse_freed_memory

    torch.set_num_threads(config["threads"])
    torch.manual_seed(0)
    height, width, mode = config["height"], config["width"], config["mode"]
    model = zoo.create_model(config["model"]).eval()
    if mode != "reference":  # what `zoo predict` does; the reference path keeps glibc's defaults, as the official code
        reuse_freed_memory()
        precision = "bfloat16" if mode == "tiled_bf16" else "float32"
        model = zoo.optimize_for_inference(model, copy_model=False, precision=precision)
    plan = None
    tic = time.perf_counter()
    if mode.startswith("tiled"):
        budget = FIXED_BUDGET if mode == "tiled_1gib" else None
        plan = tiling.plan_tiles(model, height, width, budget_bytes=budget, halo_exact=mode == "tiled_exact")
    probe_s = time.perf_counter() - tic
    base_rss = rss_bytes()
    x = torch.rand(1, 3, height, width)
    repeats = 3 if height * width <= 256 * 384 else 1
    best, cpu = math.inf, math.inf
    load_before = load1()
    for _ in range(repeats):
        tic, cpu_tic = time.perf_counter(), time.process_time()
        if mode == "reference":
            with torch.no_grad():
                y = model(x)
        elif plan is None:
            y = model(x)
        else:
            y = tiling.tiled_forward(model, x, plan)
        best = min(best, time.perf_counter() - tic)
        cpu = min(cpu, time.process_time() - cpu_tic)
        assert y.shape[-2:] == x.shape[-2:] and bool(torch.isfinite(y).all())
        del y
    result = {
        "seconds": best,
        "cpu_s": cpu,
        "probe_s": probe_s,
        "base_rss": base_rss,
        "peak_rss": rss_bytes("VmHWM"),
        "load_before": load_before,
        "load_after": load1(),
        "tiles": "",
        "windows": 1,
        "window_px": 0,
        "computed_px": 0,
        "context_px": 0,
    }
    if plan is not None:
        hooks = tiling.tiling_hooks(model)
        framed = tiling.framed_size(hooks, height, width)  # the frame the model really runs
        result.update(
            tiles=f"{plan.tile_w}x{plan.tile_h} cores, halo {plan.halo}",
            windows=len(plan.windows(*framed)),
            computed_px=plan.computed_pixels(*framed),
            window_px=plan.largest_window(*framed),
            context_px=math.prod(tiling.context_size(*framed, plan)) if hooks.has_context else 0,
        )
    return result


def run_in_subprocess(config: dict[str, Any], timeout: float, cache_dir: str | None = None) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(config["threads"]), "OPENCV_IO_ENABLE_OPENEXR": "1"}
    if cache_dir is not None:
        env["ZOO_CACHE_DIR"] = cache_dir  # the probe cache (zoo.probe_cache) of this benchmark run
    command = [sys.executable, __file__, "--worker", json.dumps(config)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "note": f"killed after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        killed = proc.returncode < 0 and -proc.returncode == 9
        return {"status": "failed", "note": ("killed (out of memory?)" if killed else tail)[:200]}
    return {"status": "ok", **json.loads(proc.stdout.strip().splitlines()[-1])}


# ----------------------------------------------------------------------------------------------------------------------
# Per-model measurements in this process: FLOPs and activation bytes (square-law fits), variants, training steps


def square_law(measure, sizes: tuple[int, int] = (128, 256)) -> tuple[float, float]:
    """Fit value(s) = a·(s + 2b)² from two square sizes (a per pixel, b the model's own padding border), so a model
    that pads (SingleHDR adds 32 px per side) is not over-counted. Returns (a, b)."""
    s1, s2 = sizes
    r1, r2 = math.sqrt(measure(s1)), math.sqrt(measure(s2))
    slope = (r2 - r1) / (s2 - s1)
    return slope**2, max((r1 / slope - s1) / 2, 0.0) if slope > 0 else 0.0


def at_size(law: tuple[float, float], height: int, width: int) -> float:
    a, b = law
    return a * (height + 2 * b) * (width + 2 * b)


def model_profile(name: str, sizes: tuple[int, int]) -> dict[str, Any]:
    """FLOPs and activation-byte laws of the untiled model, and its tiling facts."""
    from torch.utils.flop_counter import FlopCounterMode

    import zoo
    from zoo import tiling

    model = zoo.optimize_for_inference(zoo.create_model(name).eval())

    def flops(side: int) -> float:
        with FlopCounterMode(display=False) as counter:
            model(torch.rand(1, 3, side, side))
        return counter.get_total_flops()

    def activation_bytes(side: int) -> float:
        x = torch.rand(1, 3, side, side)
        with torch.inference_mode():
            return tiling.peak_activation_bytes(lambda: model(x))

    hooks = tiling.tiling_hooks(model)
    profile = {
        "flops": square_law(flops, sizes),
        "bytes": square_law(activation_bytes, sizes),
        "tileable": hooks.tileable,
        "params": sum(p.numel() for p in model.parameters()),
        "align": hooks.align,
    }
    if hooks.tileable:
        profile["halo"] = tiling.tiling_halo(model)
        profile["halo_exact"] = tiling.receptive_field(model).exact
        side = -(-tiling.PROBE_SIZE // hooks.align) * hooks.align
        window, context = tiled_flops(hooks, side)
        profile["window_flops_per_px"], profile["context_flops_per_px"] = window / side**2, context / side**2
    return profile


def tiled_flops(hooks: Any, side: int) -> tuple[float, float]:
    """FLOPs of one aligned side×side window as the tiler runs it (``hooks.window`` with a precomputed context; no
    padding of the model's own: SingleHDR's forward would add 32 px on every side), and of the global context pass on
    the same input (0 without one)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, side, side)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as context_counter:
            context = hooks.context(x)
        with FlopCounterMode(display=False) as window_counter:
            hooks.window(x, context)
    return window_counter.get_total_flops(), context_counter.get_total_flops()


def best_time(fn, repeats: int = 2) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that run) after one warm-up call."""
    fn()
    best = (math.inf, math.inf)
    for _ in range(repeats):
        tic, cpu = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - tic, time.process_time() - cpu))
    return best


def variants(name: str, height: int, width: int, compile_too: bool) -> list[dict[str, Any]]:
    """Time the inference paths of one model at height×width; error = max abs difference to eager float32."""
    import zoo

    model = zoo.create_model(name).eval()
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model(x)
    candidates: list[tuple[str, Any, str]] = []

    def eager_no_grad():
        with torch.no_grad():
            return model(x)

    def eager_inference():
        with torch.inference_mode():
            return model(x)

    candidates.append(("eager NCHW, no_grad (official path)", eager_no_grad, ""))
    candidates.append(("eager NCHW, inference_mode", eager_inference, ""))
    fast = zoo.optimize_for_inference(model)
    candidates.append(("channels-last + inference_mode (default)", lambda: fast(x), ""))
    frozen = zoo.optimize_for_inference(model, jit=True)
    note = "" if frozen.traced is not None else "trace rejected: eager channels-last used"
    candidates.append(("channels-last + jit.freeze", lambda: frozen(x), note))
    try:
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mkldnn = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(copy_eval(model), x)))
        candidates.append(("jit.optimize_for_inference (MKLDNN, NCHW in)", lambda: mkldnn(x), "traced at this size"))
    except Exception as exc:  # report, don't stop
        candidates.append(("jit.optimize_for_inference (MKLDNN, NCHW in)", None, f"failed: {type(exc).__name__}"))
    bf16 = zoo.optimize_for_inference(model, precision="bfloat16")
    candidates.append(("channels-last + bf16 autocast", lambda: bf16(x), ""))
    if compile_too:
        compiled_model = torch.compile(zoo.optimize_for_inference(model).wrapped, dynamic=False)
        xc = x.contiguous(memory_format=torch.channels_last)

        def compiled():
            with torch.inference_mode():
                return compiled_model(xc)

        tic = time.perf_counter()
        compiled()
        candidates.append(
            ("channels-last + torch.compile (inductor)", compiled, f"compile {time.perf_counter() - tic:.0f} s")
        )
    # Round-robin: every path is timed once per round, so load changes from other processes hit all paths alike.
    runnable = [(label, fn) for label, fn, _ in candidates if fn is not None]
    errors = {label: float((fn().float() - reference).abs().max()) for label, fn in runnable}  # also the warm-up
    best: dict[str, tuple[float, float]] = {label: (math.inf, math.inf) for label, _ in runnable}
    load_before = load1()
    for _ in range(VARIANT_ROUNDS):
        for label, fn in runnable:
            tic, cpu = time.perf_counter(), time.process_time()
            fn()
            best[label] = min(best[label], (time.perf_counter() - tic, time.process_time() - cpu))
    base = best[runnable[0][0]][0]
    rows = []
    for label, fn, note in candidates:
        row = {
            "model": name,
            "size": f"{width}x{height}",
            "variant": label,
            "seconds": "",
            "cpu_s": "",
            "speedup": "",
            "max_abs_error": "",
            "load_before": load_before,
            "load_after": load1(),
            "note": note,
        }
        if fn is not None:
            seconds, cpu = best[label]
            row.update(seconds=seconds, cpu_s=cpu, speedup=base / seconds, max_abs_error=errors[label])
        rows.append(row)
    return rows


def tiling_agreement(name: str, height: int, width: int, tile: int) -> dict[str, Any] | None:
    """PSNR and max abs difference of tiled vs untiled output (optimized model, ``tile``-px cores), with the default
    (effective) halo and the exact one; None for a model that cannot be tiled."""
    import zoo
    from zoo import tiling

    model = zoo.optimize_for_inference(zoo.create_model(name).eval())
    if not tiling.tiling_hooks(model).tileable:
        return None
    field = tiling.receptive_field(model)
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    untiled = model(x)
    row: dict[str, Any] = {
        "model": name,
        "size": f"{width}x{height}",
        "tile": tile,
        "halo_effective": tiling.tiling_halo(model),
        "halo_exact": field.exact,
    }
    for kind, exact in (("effective", False), ("exact", True)):
        if exact and field.exact is None:
            continue
        tiled = tiling.tiled_forward(model, x, tiling.plan_tiles(model, height, width, tile=tile, halo_exact=exact))
        mse = float(((tiled - untiled) ** 2).mean())
        peak = float(untiled.abs().max())
        row[f"psnr_db_{kind}"] = math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)
        row[f"max_abs_{kind}"] = float((tiled - untiled).abs().max())
    return row


def copy_eval(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model).eval().requires_grad_(False)


def train_steps(name: str, patch: int, batch: int) -> list[dict[str, Any]]:
    """Seconds per training step of each stage of the model's default recipe (best of 2 after a warm-up)."""
    import zoo
    from zoo.data import DataConfig, build_dataset
    from zoo.train import build_stage_optim, set_train_mode, train_step

    spec = zoo.get_spec(name)
    recipe = spec.recipe()
    dataset = build_dataset(DataConfig(patch_size=patch), "train")
    samples = [dataset[i] for i in range(batch)]
    data = {key: torch.stack([s[key] for s in samples]) for key in samples[0]}
    nets = torch.nn.ModuleDict(
        {"model": zoo.create_model(name), **{k: factory() for k, factory in recipe.aux_modules.items()}}
    )
    rows = []
    for stage in recipe.stages:
        optim = build_stage_optim(nets, stage, n_steps=100, lr_scale=1.0)
        set_train_mode(nets, stage)

        def step() -> None:
            train_step(nets, recipe, stage, optim, data)  # the library's step: every objective, as zoo run runs it

        load_before = load1()
        seconds, cpu = best_time(step)
        rows.append(
            {
                "model": name,
                "stage": stage.name,
                "objectives": "+".join(o.name for o in stage.objectives),
                "batch": f"{batch}x{patch}x{patch}",
                "seconds": seconds,
                "samples_per_s": batch / seconds,
                "cpu_s": cpu,
                "load_before": load_before,
            }
        )
    return rows


# ----------------------------------------------------------------------------------------------------------------------
# Orchestration and output


def check_columns(tables: dict[str, list[dict[str, Any]]], columns: dict[str, tuple[str, ...]] = COLUMNS) -> list[str]:
    """Fields of the rows that ``columns`` does not declare, as "table: field" (empty: every row fits)."""
    return sorted(
        {f"{name}: {k}" for name, rows in tables.items() for row in rows for k in row if k not in columns[name]}
    )


def csv_text(name: str, rows: list[dict[str, Any]], extra: dict[str, Any], columns: tuple[str, ...]) -> str:
    """The CSV of table ``name``: its declared ``columns`` in order, then ``RUN_FIELDS`` from ``extra``."""
    buffer = text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*columns, *RUN_FIELDS], restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in {**row, **extra}.items()})
    return buffer.getvalue()


def write_tables(
    out_dir: Path,
    suffix: str,
    tables: dict[str, list[dict[str, Any]]],
    extra: dict[str, Any],
    columns: dict[str, tuple[str, ...]] = COLUMNS,
) -> None:
    """Every table as ``<name><suffix>.csv`` (atomically), or none: a row with a field ``columns`` does not declare
    stops the writing and leaves the raw rows in ``bench_rows<suffix>.json`` so the measurements are not lost."""
    from zoo.io import atomic_write

    unknown = check_columns(tables, columns)
    out_dir.mkdir(parents=True, exist_ok=True)
    if unknown:
        dump = out_dir / f"bench_rows{suffix}.json"
        dump.write_text(json.dumps({"tables": tables, "run": extra}, indent=1, default=str))
        raise SystemExit(f"fields not declared in COLUMNS: {', '.join(unknown)}; no CSV written, rows kept in {dump}")
    for name, rows in tables.items():
        if rows:
            path = out_dir / f"{name}{suffix}.csv"
            atomic_write(path, lambda tmp, text=csv_text(name, rows, extra, columns[name]): tmp.write_text(text))
            path.chmod(0o644)


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    def show(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    cells = [[show(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


def speed_rows(
    names: list[str], profiles: dict[str, dict], variant_rows: list[dict], sizes, args, gemm: float
) -> list[dict[str, Any]]:
    """The latency table: every configuration not skipped runs ``args.rounds`` times, each in a fresh subprocess, the
    configurations interleaved round by round (load from other processes hits them alike). Seconds: the median, with
    the min and max; peak RSS: the largest; ``probe_s``: the tiler's probes in round 1 (the run's probe cache starts
    empty, so a model's first tiled configuration measures), ``probe_cached_s``: their median in later rounds, the
    results read from the cache (what a second ``zoo predict`` pays)."""
    from zoo import tiling

    rows, configs = [], []
    available = tiling.available_memory()
    for name in names:
        profile = profiles[name]
        # seconds per computed (padded) pixel of each inference path, from the variants table
        per_px = {
            r["variant"]: r["seconds"] / computed_px(profile, r["size"])
            for r in variant_rows
            if r["model"] == name and r["seconds"]
        }
        for height, width in sizes:
            for mode in MODES:
                row: dict[str, Any] = {"model": name, "size": f"{width}x{height}", "mode": mode}
                untiled_px = at_size(profile["flops"], height, width) / profile["flops"][0]
                predicted = 0.3e9 + tiling.SAFETY * at_size(profile["bytes"], height, width)
                key = VARIANT_OF_MODE.get(mode, "channels-last + inference_mode (default)")
                overhead, same_as_tiled = 1.0, False
                tiled = mode.startswith("tiled")
                halo = profile.get("halo_exact" if mode == "tiled_exact" else "halo")
                if tiled and profile["tileable"] and halo is not None:
                    align = profile["align"]
                    framed_h, framed_w = -(-height // align) * align, -(-width // align) * align

                    def plan_under(budget: float, ceiling: float) -> Any:
                        return tiling.budgeted_plan(
                            framed_h, framed_w, align, -(-halo // align) * align, profile["bytes"][0], budget, ceiling
                        )[0]

                    automatic = plan_under(tiling.default_budget(), tiling.memory_ceiling())
                    plan = plan_under(FIXED_BUDGET, FIXED_BUDGET) if mode == "tiled_1gib" else automatic
                    same_as_tiled = mode == "tiled_1gib" and plan == automatic
                    overhead = plan.computed_pixels(framed_h, framed_w) / untiled_px if plan else 1.0
                guess = per_px.get(key, 0) * untiled_px * overhead
                row["predicted_s"] = guess
                skip = ""
                if tiled and not profile["tileable"]:
                    skip = "not tileable: global branch without the tiling protocol (zoo/tiling.py)"
                elif tiled and halo is None:
                    skip = f"no exact halo: the receptive field exceeds the probe's {tiling.RADIUS_CAP} px"
                elif mode in ("tiled_exact", "tiled_1gib", "tiled_bf16") and (height, width) != EXACT_SIZE:
                    skip = f"measured at {EXACT_SIZE[1]}x{EXACT_SIZE[0]} only"
                elif mode == "tiled_bf16" and not native_bf16():
                    skip = "no native bf16 on this CPU (AVX-512 BF16 or AMX): autocast would emulate it"
                elif same_as_tiled:
                    skip = "the automatic plan is the 1 GiB plan too: same as tiled"
                elif tiled and overhead == 1.0 and mode != "tiled_bf16":
                    skip = "fits one window under the automatic budget: same as optimized"
                elif not tiled and predicted > MEMORY_SHARE * available:
                    skip = (
                        f"predicted peak {predicted / 1e9:.1f} GB > {MEMORY_SHARE:.0%} of the "
                        f"{available / 1e9:.1f} GB available"
                    )
                if not skip and guess > args.max_seconds:
                    skip = f"predicted {guess:.0f} s > --max-seconds {args.max_seconds:.0f}"
                if skip:
                    row.update(status="skipped", note=skip)
                    print(f"  {name} {row['size']} {mode}: skipped ({skip})", flush=True)
                else:
                    row["predicted_peak_mb"] = predicted / 2**20
                    configs.append((row, {"model": name, "height": height, "width": width, "mode": mode}, guess))
                rows.append(row)

    results: dict[int, list[dict[str, Any]]] = {id(row): [] for row, _, _ in configs}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-cache-") as cache:  # round 1 probes, later rounds read
        for round_ in range(1, args.rounds + 1):
            print(f"  round {round_} of {args.rounds}", flush=True)
            for row, config, guess in configs:
                if results[id(row)] and results[id(row)][-1]["status"] != "ok":
                    continue  # failed or timed out once: not again
                result = run_in_subprocess(
                    {**config, "threads": args.threads}, timeout=max(300.0, 4 * guess + 120), cache_dir=cache
                )
                results[id(row)].append(result)
                print(
                    f"    {row['model']} {row['size']} {row['mode']}: {result['status']} "
                    f"{result.get('seconds', '')!s:.6} s, peak {result.get('peak_rss', 0) / 2**20:.0f} MiB "
                    f"{result.get('note', '')}",
                    flush=True,
                )
    for row, _, _ in configs:
        row.update(summarise(results[id(row)], profiles[row["model"]], row, gemm))
    return rows


def summarise(runs: list[dict[str, Any]], profile: dict[str, Any], row: dict[str, Any], gemm: float) -> dict:
    """One latency row from its rounds: median seconds (min, max), the largest peak RSS, GFLOP/s at the median."""
    ok = [r for r in runs if r["status"] == "ok"]
    if len(ok) < len(runs):
        bad = next(r for r in runs if r["status"] != "ok")
        return {"status": bad["status"], "note": bad.get("note", ""), "runs": len(ok)}
    first = ok[0]
    seconds = statistics.median(r["seconds"] for r in ok)
    width, height = map(int, row["size"].split("x"))
    if first["computed_px"]:  # tiled: every window, and the global context pass once (SingleHDR's Dequantization-
        # and Linearization-Net)
        computed = profile["window_flops_per_px"] * first["computed_px"]
        computed += profile["context_flops_per_px"] * first["context_px"]
    else:
        computed = at_size(profile["flops"], height, width)
    later = [r["probe_s"] for r in ok[1:]]
    return {
        "status": "ok",
        "seconds": seconds,
        "seconds_min": min(r["seconds"] for r in ok),
        "seconds_max": max(r["seconds"] for r in ok),
        "runs": len(ok),
        "cpu_s": statistics.median(r["cpu_s"] for r in ok),
        "probe_s": first["probe_s"],
        "probe_cached_s": statistics.median(later) if later else "",
        "load_before": first["load_before"],
        "load_after": ok[-1]["load_after"],
        **{k: first[k] for k in ("tiles", "windows", "window_px", "computed_px", "context_px")},
        "peak_rss_mb": max(r["peak_rss"] for r in ok) / 2**20,
        "base_rss_mb": statistics.median(r["base_rss"] for r in ok) / 2**20,
        "useful_gflop": profile["flops"][0] * height * width / 1e9,
        "computed_gflop": computed / 1e9,
        "gflops": computed / seconds / 1e9,
        "pct_gemm": 100 * computed / seconds / 1e9 / gemm,
    }


def computed_px(profile: dict[str, Any], size: str) -> float:
    """Pixels an untiled pass computes on a WxH image (the model's own padding included)."""
    width, height = map(int, size.split("x"))
    return at_size(profile["flops"], height, width) / profile["flops"][0]


def speedup_goal(label: str, path: dict[str, Any], shown: str, reference: dict[str, Any], note: str) -> dict:
    """The speed-up goal row of a measured path (``shown``: how the row names it) against the reference path. The
    path's probes count, as a repeat `zoo predict` pays them (their results read from the disk cache)."""
    probes = float(path.get("probe_cached_s") or 0.0)
    speedup = reference["seconds"] / (path["seconds"] + probes)
    return {
        "goal": f"{label}: zoo path >= {SPEEDUP_GOAL:g}x faster than the reference path",
        "measured": f"{speedup:.2f}x ({shown}{path['seconds'] + probes:.1f} s with {probes:.2f} s of cached probes, "
        f"reference {reference['seconds']:.1f} s; medians; {note})",
        "met": speedup >= SPEEDUP_GOAL,
    }


def goal_rows(rows: list[dict[str, Any]], gemm: float) -> list[dict[str, Any]]:
    def find(model: str, size: str, mode: str) -> dict[str, Any] | None:
        return next(
            (r for r in rows if (r["model"], r["size"], r["mode"]) == (model, size, mode) and r.get("status") == "ok"),
            None,
        )

    goals = []
    for model in sorted({r["model"] for r in rows}):
        # zoo predict's path (tiled where the budget tiles, else untiled) against the reference path: the plain
        # model as the official test scripts run it (NCHW, no_grad, untiled, default malloc)
        ours = find(model, "1900x1060", "tiled") or find(model, "1900x1060", "optimized")
        reference = find(model, "1900x1060", "reference")
        if ours is None or reference is None:
            continue
        # the most any float32 path could reach: the useful conv FLOPs at the machine's GEMM throughput
        bound = reference["seconds"] / (reference["useful_gflop"] / gemm)
        note = f"{bound:.2f}x if every useful FLOP ran at GEMM speed"
        goals.append(speedup_goal(f"{model} 1900x1060", ours, f"{ours['mode']} ", reference, note))
        bf16 = find(model, "1900x1060", "tiled_bf16")
        if bf16 is not None:
            label = f"{model} 1900x1060 with --precision bfloat16"
            goals.append(speedup_goal(label, bf16, "", reference, "quality cost: precision.csv"))
        share = ours["peak_rss_mb"] / reference["peak_rss_mb"]
        goals.append(
            {
                "goal": f"{model} 1900x1060: zoo path peak RSS <= {RSS_SHARE_GOAL:.2f} of the reference path's",
                "measured": f"{share:.2f} ({ours['mode']} {ours['peak_rss_mb'] / 1024:.2f} GiB, reference "
                f"{reference['peak_rss_mb'] / 1024:.2f} GiB)",
                "met": share <= RSS_SHARE_GOAL,
            }
        )
    for row in rows:
        if row["size"] == "3840x2160" and row.get("status") == "ok":
            goals.append(
                {
                    "goal": f"{row['model']} 3840x2160 completes, peak RSS <= {UHD_RSS_GOAL_GB} GB",
                    "measured": f"{row['peak_rss_mb'] / 1024:.2f} GiB, {row['seconds']:.1f} s ({row['mode']})",
                    "met": row["peak_rss_mb"] * 2**20 <= UHD_RSS_GOAL_GB * 1e9,
                }
            )
    for row in rows:
        if row["mode"] in ("optimized", "tiled") and row.get("status") == "ok" and row["size"] != "384x256":
            goals.append(
                {
                    "goal": f"{row['model']} {row['size']} {row['mode']} conv throughput >= "
                    f"{THROUGHPUT_GOAL:.0%} of GEMM",
                    "measured": f"{row['gflops']:.0f} GFLOP/s = {row['pct_gemm']:.0f} % of {gemm:.0f}",
                    "met": row["pct_gemm"] >= 100 * THROUGHPUT_GOAL,
                }
            )
    return goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (256x384); writes *_quick.csv")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compilation)")
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="skip configurations predicted to take longer (default 600)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved runs of every latency configuration (default 3)"
    )
    parser.add_argument("--models", nargs="*", help="models to measure (default: every learned registered model)")
    add_run_options(parser)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: expected at least 1")
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    import zoo

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load_start, machine = load1(), OtherProcesses()
    names = args.models or zoo.list_models(include_baselines=False)
    sizes = QUICK_SIZES if args.quick else SIZES
    suffix = "_quick" if args.quick else ""
    host = host_description()
    print(f"speed benchmark: {host}, torch {torch.__version__}, {args.threads} threads, load {os.getloadavg()}")
    gemm_start = gemm_gflops()
    print(f"float32 GEMM 4096^3: {gemm_start:.0f} GFLOP/s")

    profiles, variant_rows, train_rows, tiling_rows = {}, [], [], []
    for name in names:
        print(f"profiling {name} ...", flush=True)
        profiles[name] = model_profile(name, (64, 128) if args.quick else (128, 256))
        vh, vw = (128, 192) if args.quick else (256, 384)
        variant_rows += variants(name, vh, vw, args.compile)
        agreement = tiling_agreement(name, vh, vw, tile=64 if args.quick else 128)
        if agreement is not None:
            tiling_rows.append(agreement)
        patch, batch = (64, 2) if args.quick else (128, 4)
        try:
            train_rows += train_steps(name, patch, batch)
        except Exception as exc:  # a recipe under construction must not stop the benchmark
            train_rows.append({"model": name, "stage": "", "note": f"failed: {type(exc).__name__}: {exc}"[:200]})
    print_table(
        f"inference variants (best of {VARIANT_ROUNDS} interleaved rounds after a warm-up)",
        variant_rows,
        ["model", "size", "variant", "seconds", "speedup", "max_abs_error", "load_before", "note"],
    )
    print_table(
        "tiled vs untiled output (default effective halo, and exact halo)",
        tiling_rows,
        [
            "model",
            "size",
            "tile",
            "halo_effective",
            "psnr_db_effective",
            "max_abs_effective",
            "halo_exact",
            "psnr_db_exact",
            "max_abs_exact",
        ],
    )
    print_table(
        "training step per recipe stage",
        train_rows,
        ["model", "stage", "objectives", "batch", "seconds", "load_before", "note"],
    )

    print("\nlatency and memory (fresh subprocess per row):", flush=True)
    rows = speed_rows(names, profiles, variant_rows, sizes, args, gemm_start)
    gemm_end = gemm_gflops()
    gemm = max(gemm_start, gemm_end)
    for row in rows:  # against the best GEMM of the run
        if row.get("gflops"):
            row["pct_gemm"] = 100 * row["gflops"] / gemm
    print_table(
        f"latency and memory ({args.threads} threads; GEMM {gemm:.0f} GFLOP/s, best of start/end)",
        rows,
        [
            "model",
            "size",
            "mode",
            "status",
            "seconds",
            "seconds_min",
            "seconds_max",
            "runs",
            "probe_s",
            "probe_cached_s",
            "peak_rss_mb",
            "tiles",
            "windows",
            "gflops",
            "pct_gemm",
            "load_before",
            "load_after",
            "note",
        ],
    )
    goals = goal_rows(rows, gemm)
    if goals:
        print_table("performance goals", goals, ["goal", "measured", "met"])

    for profile_name, profile in profiles.items():
        print(
            f"{profile_name}: {profile['flops'][0] / 1e6:.3f} MFLOP/px, {profile['bytes'][0]:.0f} activation bytes/px"
            f" (padding border {profile['flops'][1]:.0f} px), halo {profile.get('halo', '-')}"
        )
    tables = {
        "speed": rows,
        "speed_variants": variant_rows,
        "speed_train": train_rows,
        "speed_tiling": tiling_rows,
        "speed_goals": goals,
    }
    finish_run("speed.py", argv or sys.argv[1:], args, (gemm, host, load_start, machine), tables, suffix=suffix)
    print(
        f"\nGEMM {gemm_start:.0f} GFLOP/s at start, {gemm_end:.0f} at end; load now {os.getloadavg()}; "
        f"total {time.perf_counter() - started:.0f} s; wrote {args.out_dir}/speed*{suffix}.csv"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
