"""Training throughput: the zoo's whole training step beside the plain model's forward + backward + Adam step.

    python benchmarks/train_speed.py [--models NAME ...] [--batch 8] [--patch 64] [--steps 3] [--repeats 5]
                                     [--threads 2] [--compile] [--allow-load] [--out-dir DIR]

Per learned model, at the shipped weights' training setting (batch 8 of 64-px patches, ``data=mixed``), times these
variants, interleaved round-robin (``--repeats`` rounds of ``--steps`` steps each, after one warm-up step per variant;
each round starts one variant later, so none always runs right after the same one, and load from other processes hits
them alike), and reports the median and spread (min, max) of the rounds, and each round's seconds (``round_s``):

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
- ``zoo_compile`` (``--compile``): the same with ``torch.compile`` of the model (minutes of compilation);
- ``official_recipe``, the official training written out by hand on the fixed batch, with the zoo's loss functions
  for the arithmetic. Two-stage net: the official iteration (stage I with MS-SSIM and GAN, the discriminator, stage II
  with the colour term gradient-free, three Adams), beside ``zoo_official_losses``, the zoo's whole step with the
  recipe options that select the same objectives (``ciede2000_grad=False``, ``msssim_official_bug=True``). SingleHDR:
  the official per-net training, stage by stage (each stage's nets in training mode, its official loss, backward, a
  bare Adam; ``official_singlehdr_variants``), beside ``zoo`` (the default recipe's objectives are those). Each pair
  is like for like and has its own goal row.

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
        "round_s",
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


def official_twostage_step(model: torch.nn.Module, disc: torch.nn.Module, batch: dict[str, torch.Tensor]):
    """The official two-stage training iteration (HEAD) written out by hand on one fixed batch, with the zoo's loss
    arithmetic: stage I (L1 + 1 − MS-SSIM + 1e-3·GAN against gt8), the discriminator on soft noisy labels, stage II
    (L1; the ΔE2000 colour term computed without gradient, logged only, as officially); three Adams. No recipe, no
    data pipeline, no checks. Returns ``step()``; tests/test_bench_schema.py checks it updates the generator exactly
    as the zoo's step at the same objectives (``OFFICIAL_RECIPE_OPTIONS``) does."""
    from zoo.losses.ciede2000 import ciede2000_loss
    from zoo.losses.msssim import ms_ssim
    from zoo.models.twostage import recipe as official

    adam = {"lr": official.LEARNING_RATE, "betas": official.ADAM_BETAS}
    opt1 = torch.optim.Adam(model.stage1.parameters(), **adam)
    opt_d = torch.optim.Adam(disc.parameters(), **adam)
    opt2 = torch.optim.Adam(model.stage2.parameters(), **adam)
    ldr, target = batch["ldr"], batch["target"]
    gt8 = official.eight_bit_target(target)
    bce = F.binary_cross_entropy_with_logits

    def step() -> None:
        opt1.zero_grad(set_to_none=True)
        out1 = model.stage1(ldr)
        fake = disc.logits(out1)
        similarity = ms_ssim(out1, gt8, data_range=1.0, official_bug=True)
        loss1 = F.l1_loss(out1, gt8) + (1 - similarity) + official.ADVERSARIAL_WEIGHT * bce(fake, torch.ones_like(fake))
        loss1.backward()
        opt1.step()
        opt_d.zero_grad(set_to_none=True)
        real_logits, fake_logits = disc.logits(gt8), disc.logits(out1.detach())
        real_labels = torch.empty_like(real_logits).uniform_(*official.REAL_LABEL_RANGE)
        fake_labels = torch.empty_like(fake_logits).uniform_(*official.FAKE_LABEL_RANGE)
        (bce(real_logits, real_labels) + bce(fake_logits, fake_labels)).backward()
        opt_d.step()
        opt2.zero_grad(set_to_none=True)
        out2 = model.stage2(out1.detach())
        loss2 = F.l1_loss(out2, target)
        with torch.no_grad():
            ciede2000_loss(out2, target)  # logged only in the official code
        loss2.backward()
        opt2.step()

    return step


def official_twostage_variants(batch: dict[str, torch.Tensor]) -> list[Variant]:
    import zoo
    from zoo.models.twostage.net import Discriminator

    step = official_twostage_step(zoo.create_model("twostage").train(), Discriminator().train(), batch)
    return [Variant("official_recipe", "", 1.0, step)]


def official_singlehdr_variants(batch: dict[str, torch.Tensor], model: torch.nn.Module | None = None) -> list[Variant]:
    """The official per-net training, stage by stage, on one fixed batch: each stage's networks in training mode, its
    official loss (the recipe's loss functions, which docs/models.md checks against the official training code; the
    joint stage has no official code and runs the paper's Eq. 4), backward, one bare Adam over its parameters. No
    training loop around it: no data pipeline, no non-finite checks, no gradient-norm logging. One Variant per stage,
    weighted by the recipe's stage fractions like the zoo's. ``model``: the SingleHDR to train (default: a new one)."""
    import zoo
    from zoo.recipe import StepContext
    from zoo.train import set_train_mode

    recipe = zoo.get_spec("singlehdr").recipe()
    nets = torch.nn.ModuleDict({"model": model if model is not None else zoo.create_model("singlehdr")})
    total = sum(stage.fraction for stage in recipe.stages)
    variants = []
    for stage in recipe.stages:
        (objective,) = stage.objectives
        params = [p for path in objective.params for p in nets.get_submodule(path).parameters()]
        adam = torch.optim.Adam(params, lr=objective.lr)

        def step(stage=stage, objective=objective, adam=adam) -> None:
            set_train_mode(nets, stage)
            adam.zero_grad(set_to_none=True)
            objective.loss(StepContext(nets, batch, None))[0].backward()
            adam.step()

        variants.append(Variant("official_recipe", stage.name, stage.fraction / total, step))
    return variants


# The zoo's recipe with the objectives the hand-written official steps run (model name -> recipe options; SingleHDR:
# its default recipe's objectives are the official ones)
OFFICIAL_RECIPE_OPTIONS = {"twostage": {"ciede2000_grad": False, "msssim_official_bug": True}, "singlehdr": {}}
OFFICIAL_STEPS = {"twostage": official_twostage_variants, "singlehdr": official_singlehdr_variants}


def zoo_variants(name: str, variant: str, patch: int, batch_size: int) -> list[Variant]:
    """One Variant per recipe stage, each drawing its batches from its own stream as ``zoo run`` does."""
    import zoo
    from zoo.train import batch_stream, build_stage_optim, set_train_mode, train_step

    options = OFFICIAL_RECIPE_OPTIONS[name] if variant == "zoo_official_losses" else {}
    recipe = zoo.get_spec(name).recipe(**options)
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
    """Each variant's seconds per step in every round (``Variant.rounds``); round r runs the variants in their order
    rotated by r: the step before a variant (the 5 s whole-model reference, or a step of its own kind) changes what is
    in the caches and the allocator, and a fixed order would charge that to the same variants every round."""
    for v in variants:  # warm-up: first-call allocations, oneDNN primitive creation, compilation
        v.step()
    for r in range(repeats):
        shift = r % len(variants)
        for v in variants[shift:] + variants[:shift]:
            tic = time.perf_counter()
            for _ in range(steps):
                v.step()
            v.rounds.append((time.perf_counter() - tic) / steps)


def model_rows(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    batch = next(iter(speed_batches(args.patch, args.batch)))
    chosen = ["zoo", "zoo_fixed_batch", "zoo_channels_last", "zoo_worker"] + (["zoo_compile"] if args.compile else [])
    variants = [reference_variant(name, batch)]
    if name in OFFICIAL_STEPS:
        variants += OFFICIAL_STEPS[name](batch)
        if OFFICIAL_RECIPE_OPTIONS[name]:  # the zoo's step at those options (else its default step is that step)
            chosen.append("zoo_official_losses")
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
                "round_s": _rounds_text(v.rounds),
            }
        )
    reference = rows[0]["median_s"]
    fixed = ["reference", "official_recipe"] if name in OFFICIAL_STEPS else ["reference"]
    for variant in [*fixed, *chosen]:  # the run-weighted step of a variant over its stages
        stages = [r for r in rows if r["variant"] == variant]
        seconds = sum(r["share"] * r["median_s"] for r in stages)
        per_round = [sum(r["share"] * t for r, t in zip(stages, ts)) for ts in zip(*(_rounds(r) for r in stages))]
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
            "round_s": _rounds_text(per_round),
        }
        if len(stages) > 1:
            row["note"] = "stages weighted by their shares of a run's steps"
            rows.append(row)
        else:
            stages[0]["vs_reference"] = row["vs_reference"]
    return rows


def _rounds_text(seconds: list[float]) -> str:
    return ";".join(f"{t:.4g}" for t in seconds)


def _rounds(row: dict[str, Any]) -> list[float]:
    return [float(t) for t in row["round_s"].split(";")]


def paired_ratio(slower: dict[str, Any], faster: dict[str, Any]) -> tuple[float, float, float]:
    """Median, min and max over rounds of ``slower``'s seconds / ``faster``'s in the same round (> 1: ``faster`` is
    faster). Pairing by round cancels what drifts between rounds (load, clock, the allocator's state)."""
    ratios = [a / b for a, b in zip(_rounds(slower), _rounds(faster))]
    return statistics.median(ratios), min(ratios), max(ratios)


def speed_batches(patch: int, batch_size: int):
    from zoo.train import batch_stream

    return batch_stream(mixed_dataset(patch), batch_size, seed=0, start=0, stop=1)


def goal_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    goals = []
    for name in dict.fromkeys(r["model"] for r in rows):
        run = {r["variant"]: r for r in rows if r["model"] == name and r["stage"] in ("", "run")}
        whole = [v for v in run if v.startswith("zoo") and v != "zoo_fixed_batch"]  # zoo steps with their data
        best = max(whole, key=lambda v: run[v]["vs_reference"])
        ratio, low, high = paired_ratio(run["reference"], run[best])
        goals.append(
            {
                "goal": f"{name} training step (batch {run[best]['batch']}): zoo >= {TRAIN_GOAL:.1f}x the plain "
                "forward + backward + Adam",
                "measured": f"{ratio:.2f}x, paired by round (range {low:.2f}-{high:.2f}; {best} "
                f"{run[best]['median_s']:.3f} s, reference "
                f"{run['reference']['median_s']:.3f} s; zoo default {run['zoo']['vs_reference']:.2f}x)",
                "met": ratio >= TRAIN_GOAL,
            }
        )
        if "official_recipe" in run:  # like for like: the same objectives, by hand vs the zoo's whole step
            official, ours = run["official_recipe"], run.get("zoo_official_losses", run["zoo"])
            ratio, low, high = paired_ratio(official, ours)
            goals.append(
                {
                    "goal": f"{name} training step (batch {ours['batch']}): zoo >= {TRAIN_GOAL:.1f}x the official "
                    "step written by hand (same objectives, fixed batch)",
                    "measured": f"{ratio:.2f}x, paired by round (range "
                    f"{low:.2f}-{high:.2f}; {ours['variant']} {ours['median_s']:.3f} s with its data, official_recipe "
                    f"{official['median_s']:.3f} s; zoo default recipe {run['zoo']['median_s']:.3f} s)",
                    "met": ratio >= TRAIN_GOAL,
                }
            )
    return goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="models to measure (default: every learned registered model)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round (default 3)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compilation)")
    speed.add_run_options(parser)
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
    argv = argv if argv is not None else sys.argv[1:]
    tables = {"train_speed": rows, "train_speed_goals": goals}
    others = speed.finish_run("train_speed.py", argv, args, (gemm, host, load_start, machine), tables, COLUMNS)
    print(f"wrote {args.out_dir}/train_speed.csv, train_speed_goals.csv (others used {others:.0f} % of a core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
