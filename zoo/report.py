"""Tables from result rows. ``format_rows`` prints a quick console table; ``write_report`` regenerates results/."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

HEADLINE = ("psnr_l_ntire", "psnr_mu_ntire", "ssim_mu_ntire", "pu21_psnr_rgb")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A plain-text table: one line per run with the headline metrics (NTIRE protocol, dB / SSIM)."""
    columns = ["model", "tag", "seed", "status", *HEADLINE, "params", "steps", "train_seconds"]
    table = [[_fmt(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) if table else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in table]
    return "\n".join(lines)


def write_report(runs_dir: Path, out_dir: Path, plots: bool = True) -> None:
    from zoo.results import load_rows

    rows = load_rows(runs_dir)
    print(format_rows(rows))
