"""What reduced-precision inference costs in quality: every learned model's shipped weights, scored on the real
evaluation scenes in float32 and in bf16.

    python benchmarks/precision.py [--models NAME ...] [--images N] [--threads 2] [--allow-load] [--out-dir DIR]

Per learned model with shipped weights, on the frozen evaluation split of ``data=real`` (the 8 held-out Poly Haven
scenes, full 512×256 frames, through the simulated camera: what ``zoo eval data=real`` scores; ``--images N``: the
first N), through ``zoo.evaluate.evaluate`` (the protocol's metrics and encodings) with the model prepared by
``zoo.optimize_for_inference`` at each precision:

- ``float32``: the default, the reference of the deltas;
- ``bfloat16``: bf16 autocast, the spec's ``float32_modules`` kept in float32 (what ``zoo predict --precision
  bfloat16`` runs);
- ``bfloat16_everywhere``: bf16 autocast with no float32 modules, for the models whose spec names some (shows why).

Columns: the means of PU21-PSNR, PSNR-μ and PSNR-L; ``pu21_delta``: the mean per-image change of PU21-PSNR against
float32 and ``pu21_delta_worst`` the most negative one; ``seconds``: the forward passes summed over the scenes (one
pass each, for orientation: benchmarks/speed.py measures latency). Writes ``results/bench/precision.csv`` (refused
when other processes used more than ``speed.QUIET_OTHERS_PCT`` of a core during the run, unless ``--allow-load``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import speed  # noqa: E402  (the machine probes, run fields and CSV writer of the speed benchmark)

COLUMNS = {
    "precision": (
        "model",
        "precision",
        "float32_modules",
        "images",
        "pu21_psnr",
        "psnr_mu",
        "psnr_l",
        "pu21_delta",
        "pu21_delta_worst",
        "seconds",
        "native_bf16",
    ),
}
METRICS = {"pu21_psnr": "pu21_psnr_rgb", "psnr_mu": "psnr_mu_ntire", "psnr_l": "psnr_l_ntire"}


def variants(name: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(row name, autocast precision, float32 modules) to score for ``name``."""
    import zoo

    kept = zoo.get_spec(name).float32_modules
    rows = [("float32", "float32", ()), ("bfloat16", "bfloat16", kept)]
    return rows + ([("bfloat16_everywhere", "bfloat16", ())] if kept else [])


def score(name: str, precision: str, float32_modules: tuple[str, ...], dataset) -> list[dict[str, Any]]:
    """Per-image rows of ``zoo.evaluate.evaluate`` for the shipped weights at ``precision``."""
    import zoo
    from zoo.evaluate import evaluate

    model = zoo.create_model(name, pretrained=True).eval()
    model.zoo_spec = dataclasses.replace(zoo.get_spec(name), float32_modules=float32_modules)
    prepared = zoo.optimize_for_inference(model, precision=precision, copy_model=False)
    return evaluate(prepared, prepared.zoo_spec, dataset, torch.device("cpu"))


def model_rows(name: str, dataset, native_bf16: bool) -> list[dict[str, Any]]:
    scored = {row: (modules, score(name, precision, modules, dataset)) for row, precision, modules in variants(name)}
    base = [image[METRICS["pu21_psnr"]] for image in scored["float32"][1]]
    rows = []
    for variant, (modules, images) in scored.items():
        deltas = [image[METRICS["pu21_psnr"]] - b for image, b in zip(images, base)]
        rows.append(
            {
                "model": name,
                "precision": variant,
                "float32_modules": " ".join(modules),
                "images": len(images),
                **{column: statistics.fmean(image[key] for image in images) for column, key in METRICS.items()},
                "pu21_delta": statistics.fmean(deltas),
                "pu21_delta_worst": min(deltas),
                "seconds": sum(image["seconds"] for image in images),
                "native_bf16": native_bf16,
            }
        )
        print(f"{name} {variant}: PU21-PSNR {rows[-1]['pu21_psnr']:.3f} ({rows[-1]['pu21_delta']:+.3f} dB)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="models to score (default: every learned model with weights)")
    parser.add_argument("--images", type=int, default=0, help="score the first N scenes only (default 0: all)")
    speed.add_run_options(parser)
    args = parser.parse_args(argv)
    if args.images < 0:
        parser.error(f"--images {args.images}: expected 0 (all) or a positive count")

    import zoo
    from zoo.data import DataConfig, build_dataset

    torch.set_num_threads(args.threads)
    load_start, machine = speed.load1(), speed.OtherProcesses()
    host = speed.host_description()
    native_bf16 = speed.native_bf16()
    print(f"precision: {host}, torch {torch.__version__}, {args.threads} threads, native bf16 {native_bf16}")
    # conf/data/real.yaml: full frames, ringing pixels filled
    dataset = build_dataset(DataConfig(name="real", eval_height=None, eval_width=None, negative_values="fill"), "eval")
    if args.images:
        dataset = torch.utils.data.Subset(dataset, range(min(args.images, len(dataset))))
    names = args.models or [n for n in zoo.list_models(include_baselines=False) if n in zoo.pretrained.available()]
    rows = [row for name in names for row in model_rows(name, dataset, native_bf16)]
    speed.print_table(
        f"quality by precision, real eval split ({len(dataset)} scenes)",
        rows,
        ["model", "precision", "float32_modules", "pu21_psnr", "psnr_mu", "pu21_delta", "pu21_delta_worst", "seconds"],
    )
    argv = argv if argv is not None else sys.argv[1:]
    measured = (speed.gemm_gflops(), host, load_start, machine)
    others = speed.finish_run("precision.py", argv, args, measured, {"precision": rows}, COLUMNS)
    print(f"wrote {args.out_dir}/precision.csv (others used {others:.0f} % of a core, load {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
