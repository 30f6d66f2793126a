"""Is the data engine fast enough? Samples/s of the synthetic source beside each model's training-step time.

    python benchmarks/data_speed.py [--patch-size 64] [--batch 4] [--samples 200] [--steps 3]

Measures, in this process with the default loader settings (num_workers=0, torch threads 2):
- synthetic training patches (default DataConfig, patch size as given) and frozen eval images (128×192);
- for each registered model (``zoo.list_models(include_baselines=False)``): one Adam step of forward + backward with
  a plain L1 loss at the patch size and batch size, after one warm-up step. Models that fail to build are skipped
  with a note.
The data share is (time to make one batch) / (time to make it + one step); the goal is ≤ 5 %. Prints a table and
writes results/bench/data_speed.csv.
"""

from __future__ import annotations

import argparse
import csv
import io as text_io
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import zoo
from zoo.data import DataConfig, build_dataset
from zoo.io import atomic_write
from zoo.results import git_commit

OUT = Path(__file__).resolve().parents[1] / "results" / "bench" / "data_speed.csv"
# The CSV's columns (tests/test_bench_schema.py checks the committed file against them): each row's fields, then the
# run's: machine, commit and command that produced it, when, and the 1-minute load average.
COLUMNS = (
    "item",
    "seconds",
    "per_second",
    "data_share_pct",
    "note",
    "host",
    "git_commit",
    "command",
    "measured_utc",
    "load",
)


def time_samples(dataset, count: int) -> float:
    """Seconds per item, over ``count`` items (cycling through the dataset), after one warm-up item."""
    dataset[0]
    tic = time.perf_counter()
    for i in range(count):
        dataset[i % len(dataset)]
    return (time.perf_counter() - tic) / count


def time_step(name: str, patch: int, batch: int, steps: int) -> float:
    """Seconds per training step (forward, L1, backward, Adam) of model ``name``."""
    model = zoo.create_model(name)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, patch, patch, generator=generator)
    y = torch.rand(batch, 3, patch, patch, generator=generator)

    def step() -> None:
        optimiser.zero_grad()
        loss = (model(x) - y).abs().mean()
        loss.backward()
        optimiser.step()

    step()
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - tic) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patch-size", type=int, default=DataConfig().patch_size, help="training patch side")
    parser.add_argument("--batch", type=int, default=4, help="batch size of the model steps")
    parser.add_argument("--samples", type=int, default=200, help="training samples to time")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per model")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=OUT, help="CSV to write")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    cfg = DataConfig(patch_size=args.patch_size)
    train_s = time_samples(build_dataset(cfg, "train"), args.samples)
    eval_set = build_dataset(cfg, "eval")
    eval_s = time_samples(eval_set, len(eval_set))
    batch_s = train_s * args.batch
    rows = [
        {
            "item": f"synthetic train patch {args.patch_size}x{args.patch_size}",
            "seconds": train_s,
            "per_second": 1 / train_s,
            "data_share_pct": "",
            "note": "samples/s, num_workers=0",
        },
        {
            "item": f"synthetic eval image {cfg.eval_height}x{cfg.eval_width}",
            "seconds": eval_s,
            "per_second": 1 / eval_s,
            "data_share_pct": "",
            "note": "images/s",
        },
    ]
    for name in zoo.list_models(include_baselines=False):
        try:
            step_s = time_step(name, args.patch_size, args.batch, args.steps)
        except Exception as exc:  # a model under construction must not stop the benchmark
            rows.append(
                {
                    "item": f"model {name}",
                    "seconds": "",
                    "per_second": "",
                    "data_share_pct": "",
                    "note": f"skipped: {type(exc).__name__}: {exc}"[:200],
                }
            )
            continue
        share = 100 * batch_s / (batch_s + step_s)
        note = "ok (goal <= 5 %)" if share <= 5 else "data too slow"
        rows.append(
            {
                "item": f"model {name} step (batch {args.batch})",
                "seconds": step_s,
                "per_second": 1 / step_s,
                "data_share_pct": share,
                "note": note,
            }
        )

    load = os.getloadavg()[0]  # other processes on the same cores inflate every number here alike
    host = f"{platform.node()} {platform.machine()}, torch threads {args.threads}, load {load:.1f}"
    print(f"data engine speed ({host}; numpy {np.__version__}, torch {torch.__version__})")
    print(f"{'item':<44} {'ms':>10} {'per s':>10} {'data %':>8}  note")
    for row in rows:
        ms = f"{row['seconds'] * 1e3:10.2f}" if row["seconds"] != "" else f"{'-':>10}"
        per = f"{row['per_second']:10.2f}" if row["per_second"] != "" else f"{'-':>10}"
        share = f"{row['data_share_pct']:8.2f}" if row["data_share_pct"] != "" else f"{'':>8}"
        print(f"{row['item']:<44} {ms} {per} {share}  {row['note']}")

    run = {
        "host": host,
        "git_commit": git_commit(),
        "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["python", "benchmarks/data_speed.py", *(argv if argv is not None else sys.argv[1:])]),
        "load": f"{load:.2f}",
    }
    buffer = text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, **run})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, lambda tmp: tmp.write_text(buffer.getvalue()))
    args.out.chmod(0o644)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
