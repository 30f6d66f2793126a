"""Training throughput: the zoo's whole training step beside the plain model's forward + backward + Adam step.

    python benchmarks/train_speed.py [--models NAME ...] [--batch 8] [--patch 64] [--steps 4] [--repeats 3]
                                     [--threads 2] [--compile] [--allow-load] [--out-dir DIR]

Per learned model, at the shipped weights' training setting (batch 8 of 64-px patches, ``data=mixed``), times these
variants, interleaved round-robin (``--repeats`` rounds of ``--steps`` steps each, after one warm-up step per variant,
so load from other processes hits them alike), and reports the median and spread (min, max) of the rounds:

- ``reference``: the plain model's forward + backward + Adam without a data pipeline: the model (NCHW) on one fixed
  batch, an L1 loss on its output, backward, Adam. The official code is not in this repository; the zoo's models are
  weight-compatible with it (layer for layer, docs/models.md), so this is the official network's arithmetic. For
  HDRUNet it is the official step (whose tanh-L1 costs the same as L1); the official two-stage and SingleHDR steps
  also run their other objectives (discriminator and GAN, MS-SSIM, CIEDE2000; per-stage losses), so for them it is
  a lower bound of the official step and the ratio is a pessimistic one.
- ``zoo``: what ``zoo run`` does per step: the next batch from ``zoo.train.batch_stream`` (data generated on the fly:
  crops, camera, noise, JPEG), then ``zoo.train.train_step`` with every objective of the stage (the recipe's losses,
  the GAN discriminator, the non-finite checks, the logged gradient norm) and its optimisers;
- ``zoo_fixed_batch``: ``train_step`` alone on one fixed batch (no data generation): the zoo's step on the reference's
  terms, so the data's share and the objectives' share of the gap are told apart;
- ``zoo_channels_last``: the same as ``zoo`` with the networks and the batch in channels-last memory format;
- ``zoo_worker``: the same with the data on one DataLoader worker process (``data.num_workers=1``);
- ``zoo_compile`` (``--compile``): the same with ``torch.compile`` of the model (minutes of compilation).

Recipes with several stages (SingleHDR) are timed per stage; the model's ``zoo`` figure is then the per-stage
seconds weighted by the stages' shares of a run's steps (``Stage.fraction``), i.e. what a run averages. The ratio
``zoo / reference`` (samples per second, > 1 = the zoo is faster) goes to ``train_speed_goals.csv`` against
``TRAIN_GOAL``. Writes ``results/bench/train_speed.csv`` and ``train_speed_goals.csv`` (refused when other processes
used more than ``speed.QUIET_OTHERS_PCT`` of a core during the run, unless ``--allow-load``).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import speed  # noqa: E402  (the machine probes, run fields and CSV writer of the speed benchmark)

TRAIN_GOAL = 1.0  # the zoo's whole step at least as fast as the plain forward + backward + Adam
COLUMNS = {
    "train_speed": (
        "model",
        "variant",
        "stage",
        "share",
        "batch",
        "median_s",
        "min_s",
        "max_s",
        "samples_per_s",
        "vs_reference",
        "rounds",
        "note",
    ),
    "train_speed_goals": ("goal", "measured", "met"),
}


class Variant:
    """One way of running training steps of one model: ``step()`` runs one step; ``share`` weights its stage."""

    def __init__(self, name: str, stage: str, share: float, step: Callable[[], None]):
        self.name, self.stage, self.share, self.step = name, stage, share, step
        self.rounds: list[float] = []


@functools.cache
def mixed_dataset(patch: int):
    """The reference training data (built once per patch size; every stream of the run draws from it)."""
    from zoo.data import DataConfig, build_dataset

    return build_dataset(DataConfig(name="mixed", patch_size=patch), "train")


def reference_variant(name: str, batch: dict[str, torch.Tensor]) -> Variant:
    import zoo

    model = zoo.create_model(name).train()
    optim = torch.optim.Adam(model.parameters(), lr=1e-4)
    ldr, target = batch["ldr"], batch["target"]

    def step() -> None:
        optim.zero_grad(set_to_none=True)
        output = model(ldr)
        F.l1_loss(output, target).backward()
        optim.step()

    return Variant("reference", "", 1.0, step)


def zoo_variants(name: str, variant: str, patch: int, batch_size: int) -> list[Variant]:
    """One Variant per recipe stage, each drawing its batches from its own stream as ``zoo run`` does."""
    import zoo
    from zoo.train import batch_stream, build_stage_optim, set_train_mode, train_step

    recipe = zoo.get_spec(name).recipe()
    nets = torch.nn.ModuleDict(
        {"model": zoo.create_model(name), **{k: factory() for k, factory in recipe.aux_modules.items()}}
    )
    channels_last = variant == "zoo_channels_last"
    if channels_last:
        nets = nets.to(memory_format=torch.channels_last)
    if variant == "zoo_compile":
        nets["model"] = torch.compile(nets["model"])
    workers = 1 if variant == "zoo_worker" else 0
    total = sum(s.fraction for s in recipe.stages)
    out = []
    for stage in recipe.stages:
        optim = build_stage_optim(nets, stage, n_steps=10_000, lr_scale=1.0)
        stream = iter(batch_stream(mixed_dataset(patch), batch_size, seed=0, start=0, stop=10_000, num_workers=workers))
        fixed = next(stream) if variant == "zoo_fixed_batch" else None

        def step(stage=stage, optim=optim, stream=stream, fixed=fixed) -> None:
            set_train_mode(nets, stage)
            batch = fixed if fixed is not None else next(stream)
            if channels_last:
                batch = {
                    k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()
                }
            train_step(nets, recipe, stage, optim, batch)

        label = stage.name if len(recipe.stages) > 1 else ""
        out.append(Variant(variant, label, stage.fraction / total, step))
    return out


def timed_rounds(variants: list[Variant], steps: int, repeats: int) -> None:
    for v in variants:  # warm-up: first-call allocations, oneDNN primitive creation, compilation
        v.step()
    for _ in range(repeats):
        for v in variants:
            tic = time.perf_counter()
            for _ in range(steps):
                v.step()
            v.rounds.append((time.perf_counter() - tic) / steps)


def model_rows(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    batch = next(iter(speed_batches(args.patch, args.batch)))
    chosen = ["zoo", "zoo_fixed_batch", "zoo_channels_last", "zoo_worker"] + (["zoo_compile"] if args.compile else [])
    variants = [reference_variant(name, batch)]
    for variant in chosen:
        variants += zoo_variants(name, variant, args.patch, args.batch)
    print(f"{name}: {len(variants)} variants x {args.repeats} rounds x {args.steps} steps ...", flush=True)
    timed_rounds(variants, args.steps, args.repeats)
    rows = []
    for v in variants:
        rows.append(
            {
                "model": name,
                "variant": v.name,
                "stage": v.stage,
                "share": v.share,
                "batch": f"{args.batch}x{args.patch}x{args.patch}",
                "median_s": statistics.median(v.rounds),
                "min_s": min(v.rounds),
                "max_s": max(v.rounds),
                "samples_per_s": args.batch / statistics.median(v.rounds),
                "rounds": len(v.rounds),
            }
        )
    reference = rows[0]["median_s"]
    for variant in ["reference", *chosen]:  # the run-weighted step of a variant over its stages
        stages = [r for r in rows if r["variant"] == variant]
        seconds = sum(r["share"] * r["median_s"] for r in stages)
        row = {
            "model": name,
            "variant": variant,
            "stage": "run" if len(stages) > 1 else stages[0]["stage"],
            "share": 1.0,
            "batch": stages[0]["batch"],
            "median_s": seconds,
            "samples_per_s": args.batch / seconds,
            "vs_reference": reference / seconds,
            "rounds": args.repeats,
        }
        if len(stages) > 1:
            row["note"] = "stages weighted by their shares of a run's steps"
            rows.append(row)
        else:
            stages[0]["vs_reference"] = row["vs_reference"]
    return rows


def speed_batches(patch: int, batch_size: int):
    from zoo.train import batch_stream

    return batch_stream(mixed_dataset(patch), batch_size, seed=0, start=0, stop=1)


def goal_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    goals = []
    for name in dict.fromkeys(r["model"] for r in rows):
        run = {r["variant"]: r for r in rows if r["model"] == name and r["stage"] in ("", "run")}
        whole = [v for v in run if v not in ("reference", "zoo_fixed_batch")]  # steps that include their data
        best = max(whole, key=lambda v: run[v]["vs_reference"])
        ratio = run[best]["vs_reference"]
        goals.append(
            {
                "goal": f"{name} training step (batch {run[best]['batch']}): zoo >= {TRAIN_GOAL:.1f}x the plain "
                "forward + backward + Adam",
                "measured": f"{ratio:.2f}x ({best} {run[best]['median_s']:.3f} s, reference "
                f"{run['reference']['median_s']:.3f} s; zoo default {run['zoo']['vs_reference']:.2f}x)",
                "met": ratio >= TRAIN_GOAL,
            }
        )
    return goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="models to measure (default: every learned registered model)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compilation)")
    parser.add_argument("--out-dir", type=Path, default=speed.OUT_DIR)
    parser.add_argument("--allow-load", action="store_true", help="write to results/bench even under load")
    args = parser.parse_args(argv)

    import zoo

    torch.set_num_threads(args.threads)
    load_start, machine = speed.load1(), speed.OtherProcesses()
    host = speed.host_description()
    print(f"training speed: {host}, torch {torch.__version__}, {args.threads} threads, load {os.getloadavg()}")
    gemm = speed.gemm_gflops()
    rows = []
    for name in args.models or zoo.list_models(include_baselines=False):
        rows += model_rows(name, args)
    goals = goal_rows(rows)
    speed.print_table(
        f"training step, median of {args.repeats} interleaved rounds of {args.steps} steps",
        rows,
        ["model", "variant", "stage", "share", "median_s", "min_s", "max_s", "samples_per_s", "vs_reference"],
    )
    speed.print_table("training goals", goals, ["goal", "measured", "met"])
    others = machine.percent()
    argv = argv if argv is not None else sys.argv[1:]
    extra = speed.run_fields("train_speed.py", argv, args.threads, gemm, host, load_start, others)
    speed.refuse_if_loaded(others, args.out_dir, args.allow_load)
    speed.write_tables(args.out_dir, "", {"train_speed": rows, "train_speed_goals": goals}, extra, COLUMNS)
    print(f"wrote {args.out_dir}/train_speed.csv, train_speed_goals.csv (others used {others:.0f} % of a core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
