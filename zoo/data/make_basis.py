"""Generate the project's inverse camera-response basis (docs/data.md): ``python -m zoo.data.make_basis``.

Writes ``zoo/data/assets/crf_basis_v1.npy`` ((27, 1024) float64 rows: grid i/1023, mean inverse curve g0, principal
components h1..h25 of the training curves' inverses, the layout of EMoR's invemor.txt) and
``crf_basis_v1.json`` (provenance: seeds, family sizes, split, explained variance, held-out reconstruction errors,
sha256). Paste the printed sha256 into ``zoo.data.crf.BASIS_SHA256``. ``--check`` regenerates in memory and compares
with the committed file instead of writing (the SVD is not bit-stable across BLAS builds, so the check allows 1e-9).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys

import numpy as np

from zoo.data import crf
from zoo.io import atomic_write

GENERATOR_VERSION = 1
K_MAX = 25  # as many components as EMoR ships; models use the first 11
K_REPORT = 11


def reconstruction_errors(basis_rows: np.ndarray, curves: tuple[crf.ResponseCurve, ...], k: int) -> dict:
    """Max-abs error of held-back inverse curves projected on k components, before and after SingleHDR's monotone
    fix (``crf.increase``), as {"max", "median"} for each."""
    g0, h = basis_rows[1], basis_rows[2 : 2 + k].T
    inverses = np.stack([c.inverse for c in curves])
    raw = g0 + ((inverses - g0) @ h) @ h.T
    before = np.abs(raw - inverses).max(axis=1)
    after = np.abs(crf.increase(raw) - inverses).max(axis=1)
    return {
        "count": len(curves),
        "max_abs": float(before.max()),
        "median_max_abs": float(np.median(before)),
        "max_abs_after_fix": float(after.max()),
        "median_max_abs_after_fix": float(np.median(after)),
    }


def build() -> tuple[np.ndarray, dict]:
    """The basis rows (27, 1024) and the provenance record (without the sha256)."""
    bank = crf.curve_bank(crf.BANK_SEED)
    inverses = np.stack([c.inverse for c in bank.train])
    g0, h, explained = crf.fit_basis(inverses, K_MAX)
    rows = np.concatenate([crf.GRID[None], g0[None], h.T]).astype(np.float64)
    in_family = tuple(c for c in bank.eval if c.family != crf.HELD_OUT_FAMILY)
    held_family = tuple(c for c in bank.eval if c.family == crf.HELD_OUT_FAMILY)
    info = {
        "generator": "zoo.data.make_basis",
        "generator_version": GENERATOR_VERSION,
        "bank_seed": crf.BANK_SEED,
        "bank_version": crf.BANK_VERSION,
        "families": crf.FAMILY_SIZES,
        "held_out_family": crf.HELD_OUT_FAMILY,
        "held_out_share": crf.HELD_OUT_SHARE,
        "min_slope": crf.MIN_SLOPE,
        "train_curves": [c.name for c in bank.train],
        "eval_curves": [c.name for c in bank.eval],
        "rows": "grid, g0, h1..h25 (1024 samples each, float64)",
        "explained_variance": [float(v) for v in explained],
        f"heldout_in_family_k{K_REPORT}": reconstruction_errors(rows, in_family, K_REPORT),
        f"heldout_{crf.HELD_OUT_FAMILY}_k{K_REPORT}": reconstruction_errors(rows, held_family, K_REPORT),
        "numpy": np.__version__,
    }
    return rows, info


def npy_bytes(rows: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, rows, allow_pickle=False)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing")
    args = parser.parse_args(argv)
    rows, info = build()
    if args.check:
        committed = np.load(crf.ASSET, allow_pickle=False)
        diff = float(np.abs(committed - rows).max())
        print(f"max |regenerated - committed| = {diff:.3g}")
        return 0 if diff < 1e-9 else 1
    data = npy_bytes(rows)
    info["sha256"] = hashlib.sha256(data).hexdigest()
    crf.ASSET.parent.mkdir(exist_ok=True)
    atomic_write(crf.ASSET, lambda tmp: tmp.write_bytes(data))
    text = json.dumps(info, indent=1) + "\n"
    atomic_write(crf.ASSET.with_suffix(".json"), lambda tmp: tmp.write_text(text))
    for path in (crf.ASSET, crf.ASSET.with_suffix(".json")):
        path.chmod(0o644)  # atomic_write's temporary files are private (0600)
    print(f"wrote {crf.ASSET} sha256 {info['sha256']}")
    for key in (f"heldout_in_family_k{K_REPORT}", f"heldout_{crf.HELD_OUT_FAMILY}_k{K_REPORT}"):
        print(key, info[key])
    print(f"explained variance with {K_REPORT} components: {info['explained_variance'][K_REPORT - 1]:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
