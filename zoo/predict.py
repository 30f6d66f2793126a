"""``zoo predict``: turn your own photos into HDR, at any size, within the machine's memory.

    zoo predict --model hdrunet --weights hdrunet.pt photo.jpg holiday/ -o out/ [--format exr|hdr|ntire] [--tile N]

For every input (files, or folders of PNG/JPEG/TIFF/BMP/HEIC/AVIF, not recursive; 8 or 16 bit; EXIF orientation
applied, see ``zoo.photo``) it writes, atomically (``zoo.io``):

- ``--format exr`` (default): ``<stem>.exr``, float16 OpenEXR of **linear** relative radiance (the model output
  converted from its spec's ``output_domain`` by ``zoo.domains.to_linear``; negatives clamped to 0; 1.0 ≈ the level
  where the input clips for exposure-aligned models; values above float16's 65504 are clipped);
- ``--format hdr``: ``<stem>.hdr``, Radiance RGBE of the same linear radiance;
- ``--format ntire``: ``<id>.png`` + ``<id>_alignratio.npy``, the NTIRE 2021 encoding (gamma 2.24, uint16 ×
  alignratio; ``<id>`` is the stem without a ``_medium`` suffix, as the challenge names results);
- ``<base>_preview.png``: an 8-bit preview, the NTIRE 2021 μ-law tone map (μ = 5000, tanh, normalised by the 99th
  percentile of the image's own linear values; ``zoo.metrics.ntire_mu_tonemap``).

An input that cannot be read is reported on one line and skipped; the others are still processed and the exit status
is 1 if any failed. Large images are tiled automatically (``zoo.tiling``) to fit the memory budget; tiled and untiled
results agree (the halo covers the effective receptive field; ``--exact-tiles`` covers all of it). Without
``--weights`` the model's shipped pretrained weights are used (``zoo list`` shows which models have them); a model
without them runs with random weights and a loud warning (useful for testing the pipeline only).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zoo import io
from zoo.domains import to_linear, to_ntire
from zoo.errors import ZooError
from zoo.photo import PHOTO_SUFFIXES, read_photo
from zoo.tiling import run_model

log = logging.getLogger(__name__)

FORMATS = ("exr", "hdr", "ntire")
HALF_MAX = 65504.0  # largest finite float16
PREVIEW_SUFFIX = "_preview.png"
MIN_TILE = 32  # px: smaller tiles are all halo (the receptive fields are 100s of px)


def predict_image(
    model: nn.Module,
    ldr: np.ndarray,
    tile: int | None = None,
    budget_bytes: int | None = None,
    halo: int | None = None,
    halo_exact: bool = False,
) -> np.ndarray:
    """One photo through ``model``: ldr H×W×3 float32 sRGB in [0, 1], any H, W → H×W×3 float32 in the model's native
    domain (``zoo.get_spec(name).output_domain``), unclamped.

    ``tile``: None → automatic (tiled only when the image does not fit ``budget_bytes``, see ``zoo.tiling``); 0 → one
    untiled pass; N → N×N tiles. ``halo``: None → the model's effective receptive field (tiles match the untiled
    result to far better than 50 dB; ``halo_exact=True``: the full receptive field, equal up to float rounding); N →
    N pixels.
    """
    ldr = np.asarray(ldr)
    if ldr.ndim != 3 or ldr.shape[2] != 3:
        raise ZooError(f"predict_image: expected an HxWx3 image, got shape {ldr.shape}")
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.from_numpy(np.ascontiguousarray(ldr, dtype=np.float32)).permute(2, 0, 1)[None].to(device)
    with torch.inference_mode():
        y = run_model(model, x, tile=tile, budget_bytes=budget_bytes, halo=halo, halo_exact=halo_exact)
    return y[0].permute(1, 2, 0).float().cpu().numpy()


def preview(image_ntire: np.ndarray) -> np.ndarray:
    """The μ-law preview (H×W×3 in [0, 1)) of an NTIRE gamma-encoded image, normalised by its own 99th percentile
    (by its maximum when over 99 % of the values are black; black for an all-black image)."""
    from zoo.metrics import ntire_mu_tonemap

    try:
        return ntire_mu_tonemap(image_ntire, image_ntire)
    except ZooError:
        peak = float(image_ntire.max())
        if peak <= 0:
            return np.zeros_like(image_ntire)
        return ntire_mu_tonemap(image_ntire, np.full_like(image_ntire, peak))


def output_base(path: Path, fmt: str) -> str:
    """File name base of an input's outputs: the stem; for NTIRE, the stem without ``_medium`` (``0001_medium`` →
    ``0001``)."""
    return path.stem.removesuffix("_medium") if fmt == "ntire" else path.stem


def output_paths(out_dir: Path, base: str, fmt: str) -> list[Path]:
    """Every file written for one input, main output first, preview last."""
    if fmt == "ntire":
        main = out_dir / f"{base}.png"
        return [main, io.alignratio_path(main), out_dir / f"{base}{PREVIEW_SUFFIX}"]
    return [out_dir / f"{base}.{fmt}", out_dir / f"{base}{PREVIEW_SUFFIX}"]


def write_outputs(native: np.ndarray, domain: str, out_dir: Path, base: str, fmt: str) -> list[Path]:
    """Write one prediction (native domain) in ``fmt`` plus its preview. All or nothing: if a write fails, the files
    already written for this image are removed."""
    written: list[Path] = []
    try:
        ntire = to_ntire(native, domain)
        if fmt == "ntire":
            written += io.write_ntire(out_dir / f"{base}.png", ntire)
        else:
            linear = to_linear(native, domain)
            if fmt == "exr":
                written.append(io.write_exr(out_dir / f"{base}.exr", np.minimum(linear, HALF_MAX)))
            else:
                written.append(io.write_hdr(out_dir / f"{base}.hdr", linear))
            del linear
        written.append(io.write_png8(out_dir / f"{base}{PREVIEW_SUFFIX}", preview(ntire)))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def collect_inputs(inputs: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Files to process (folders expanded to their LDR images, sorted, not recursive) and one problem message per
    input that does not exist or is an empty folder."""
    files: list[Path] = []
    problems: list[str] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(
                p
                for p in item.iterdir()
                if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES and not p.name.endswith(PREVIEW_SUFFIX)
            )
            if not found:
                problems.append(f"{item}: folder has no images ({', '.join(PHOTO_SUFFIXES)})")
            files += found
        elif item.exists():
            files.append(item)
        else:
            problems.append(f"{item}: no such file or folder")
    return files, problems


def warn_out_of_domain(path: Path, ldr: np.ndarray) -> None:
    """The released models were trained on well-exposed 8-bit frames (NTIRE ``_medium``); say so when an input is
    far from that."""
    clipped = float((ldr.max(axis=2) >= 254.5 / 255).mean())
    mean = float(ldr.mean())
    if clipped > 0.5:
        log.warning("%s: %.0f %% of the pixels are clipped; the models expect well-exposed inputs", path, 100 * clipped)
    elif mean < 0.02:
        log.warning("%s: very dark input (mean %.3f); the models expect well-exposed inputs", path, mean)


def build_model(name: str | None, weights: str | None, device: str, precision: str) -> nn.Module:
    """The registered model with its weights, prepared for inference (``zoo.optimize_for_inference``). A zoo
    checkpoint brings its own architecture (registry name and model arguments), so ``name`` may be None; without
    ``weights`` the shipped pretrained weights are used, or random ones with a loud warning."""
    from zoo import pretrained
    from zoo.factory import create_model
    from zoo.inference import optimize_for_inference
    from zoo.malloc import reuse_freed_memory
    from zoo.registry import get_spec
    from zoo.weights import checkpoint_architecture, load_weights, read_checkpoint

    check_device(device)
    if weights is not None:
        checkpoint = read_checkpoint(weights)
        recorded = checkpoint_architecture(checkpoint, weights)
        if name is None and recorded is None:
            raise ZooError(f"{weights}: an official checkpoint layout names no model; pass --model NAME")
        model = create_model(name or recorded[0], **(recorded[1] if recorded else {}))
        load_weights(model, checkpoint, origin=weights)
    elif name is None:
        raise ZooError("--model NAME is needed when no --weights file is given (`zoo list` shows the models)")
    elif get_spec(name).is_baseline:
        model = create_model(name)  # nothing to learn, nothing to load
    elif name in pretrained.available():
        model = create_model(name, pretrained=True)
        log.info("using the shipped pretrained weights of %r (%s)", name, pretrained.weights_path(name))
    else:
        model = create_model(name)
        log.warning(
            "*** no --weights given and %r has no shipped weights: RANDOM weights, outputs are meaningless "
            "(use this only to test the pipeline) ***",
            name,
        )
    model = model.to(device)
    if device == "cpu" and not reuse_freed_memory():
        log.debug("not glibc: large tensors keep their mmap/munmap cost")
    return optimize_for_inference(model, precision=precision, copy_model=False)


def check_device(device: str) -> None:
    """``cpu``, ``cuda`` or ``cuda:N`` that this machine has; anything else is a one-line ``ZooError``."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ZooError(f"--device {device}: not a device; expected cpu, cuda or cuda:N") from None
    if parsed.type not in ("cpu", "cuda"):
        raise ZooError(f"--device {device}: unsupported device type; expected cpu, cuda or cuda:N")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ZooError(f"--device {device}: CUDA is not available on this machine")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ZooError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def check_options(args: argparse.Namespace) -> None:
    """Numeric options out of range are one-line errors before any model is built."""
    if args.threads is not None and args.threads < 1:
        raise ZooError(f"--threads {args.threads}: expected a positive number of threads")
    if args.memory_budget is not None and args.memory_budget <= 0:
        raise ZooError(f"--memory-budget {args.memory_budget:g}: expected a positive number of MiB")
    if args.tile is not None and 0 < args.tile < MIN_TILE:
        raise ZooError(
            f"--tile {args.tile}: tiles under {MIN_TILE} px spend nearly all their time on the halo; "
            f"expected 0 (no tiling) or at least {MIN_TILE}"
        )
    if args.halo is not None and args.halo < 0:
        raise ZooError(f"--halo {args.halo}: expected a halo of 0 or more pixels")


def predict_files(
    model: nn.Module,
    files: list[Path],
    out_dir: Path,
    fmt: str = "exr",
    tile: int | None = None,
    budget_bytes: int | None = None,
    halo: int | None = None,
    halo_exact: bool = False,
    progress: bool = True,
) -> list[str]:
    """Predict every file into ``out_dir``; returns one message per failed file (the others are written)."""
    from tqdm import tqdm

    domain = model.zoo_spec.output_domain
    failures: list[str] = []
    claimed: dict[Path, Path] = {}
    bar = tqdm(files, unit="image", disable=not progress or len(files) < 2, file=sys.stderr)
    for path in bar:
        bar.set_postfix_str(path.name)
        try:
            targets = output_paths(out_dir, output_base(path, fmt), fmt)
            for target in targets:
                if target.resolve() == path.resolve():
                    raise ZooError(f"{path}: its output {target.name} would overwrite the input; choose another -o")
                if target in claimed:
                    raise ZooError(f"{path}: output {target.name} is already written for {claimed[target]}")
            ldr = read_photo(path).image
            warn_out_of_domain(path, ldr)
            native = predict_image(model, ldr, tile=tile, budget_bytes=budget_bytes, halo=halo, halo_exact=halo_exact)
            del ldr
            write_outputs(native, domain, out_dir, output_base(path, fmt), fmt)
            claimed.update({target: path for target in targets})
        except ZooError as exc:
            failures.append(str(exc))
            tqdm.write(f"error: {exc}", file=sys.stderr)
    return failures


def _cmd_predict(args: argparse.Namespace) -> int:
    check_options(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    files, problems = collect_inputs(args.inputs)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not files:
        raise ZooError("no input images to process")
    out_dir = Path(args.out)
    created = not out_dir.exists()
    io.check_writable_folder(out_dir, f"--out {out_dir}")
    try:
        model = build_model(args.model, args.weights, args.device, args.precision)
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    budget = None if args.memory_budget is None else int(args.memory_budget * (1 << 20))
    failures = predict_files(model, files, out_dir, args.format, args.tile, budget, args.halo, args.exact_tiles)
    done = len(files) - len(failures)
    print(
        f"wrote {done} of {len(files)} image(s) to {out_dir}" + (f"; {len(failures)} failed" if failures else ""),
        file=sys.stderr,
    )
    return 1 if failures or problems else 0


def add_predict_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``zoo predict`` to the ``zoo`` command's subparsers."""
    parser = subparsers.add_parser(
        "predict",
        help="turn photos (files or folders) into HDR images + previews",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="photos or folders of them (PNG/JPEG/TIFF/BMP, 8 or 16 bit; HEIC/AVIF)",
    )
    parser.add_argument("-o", "--out", required=True, metavar="OUTDIR", help="output folder (created if missing)")
    parser.add_argument(
        "--model",
        help="registered model name (`zoo list`); optional with a zoo checkpoint as "
        "--weights (it names its own architecture)",
    )
    parser.add_argument(
        "--weights",
        help="weights file (zoo checkpoint or official layout); default: the model's shipped "
        "pretrained weights (`zoo list`)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="exr",
        help="exr (float16 linear, default), hdr (Radiance linear) or ntire (uint16 PNG + alignratio)",
    )
    parser.add_argument(
        "--tile",
        type=int,
        metavar="N",
        help="tile size in pixels (0: never tile); default: chosen from the memory budget",
    )
    parser.add_argument(
        "--halo",
        type=int,
        metavar="N",
        help="context around each tile in pixels (default: the model's measured effective receptive "
        "field: tiles match an untiled run to far better than 50 dB PSNR)",
    )
    parser.add_argument(
        "--exact-tiles",
        action="store_true",
        help="halo = the full receptive field: tiles equal an untiled run up to float rounding " "(slower)",
    )
    parser.add_argument(
        "--memory-budget",
        type=float,
        metavar="MIB",
        help="peak memory growth allowed for one tile in MiB (default: 1024, raised up to half the free RAM "
        "where small tiles would be mostly halo); the process itself needs about 250 MiB more, plus ~50 bytes "
        "per image pixel",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    parser.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "float16"),
        default="float32",
        help="compute precision (autocast); float32 is exact, the others are faster on some hardware",
    )
    parser.set_defaults(func=_cmd_predict)
    return parser
