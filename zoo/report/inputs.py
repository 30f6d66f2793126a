"""What the report reads: the result rows of a folder, and the speed benchmark's CSV when it exists."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from zoo.results import read_row

log = logging.getLogger(__name__)

BENCH_CSV = Path("bench") / "speed.csv"


def load_run_rows(runs_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of ``runs_dir`` sorted by (model, tag, seed, run id), and the names of unreadable files. Hidden files
    (a row being written by a running sweep) are ignored."""
    rows, unreadable = [], []
    for path in sorted(Path(runs_dir).glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            row = read_row(path)
            row["run_id"] = str(row.get("run_id", path.stem))
            rows.append(row)
        except (OSError, ValueError) as exc:
            unreadable.append(f"{path.name}: {exc}")
    rows.sort(key=lambda r: (str(r.get("model", "")), str(r.get("tag", "")), int(r.get("seed", 0)), r["run_id"]))
    return rows, unreadable


BENCH_SIZE = "1900x1060"  # the NTIRE frame (width x height), as benchmarks/speed.py names sizes
# preferred first: what `zoo predict` runs (tiled where the automatic plan tiles the frame, else one untiled pass)
BENCH_MODES = (("tiled", "tiled"), ("optimized", "untiled"))
BENCH_COLUMNS = ("model", "size", "mode", "status", "seconds")


def read_bench(path: Path) -> tuple[dict[str, tuple[float, str]], str]:
    """{model: (seconds per image at 1900×1060, mode)} from ``benchmarks/speed.py``'s CSV (columns model, size, mode,
    status, seconds): ``zoo predict``'s path (the automatic tiling where it was measured, else the untiled pass,
    which is what it runs when the frame fits one window); and a note saying what was used.
    ({}, "") without a file. The benchmark measures the official variant of each model only."""
    if not path.is_file():
        return {}, ""
    with path.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    if not records or any(c not in records[0] for c in BENCH_COLUMNS):
        log.warning("%s: expected the speed benchmark's columns %s; benchmark latency left out", path, BENCH_COLUMNS)
        return {}, ""
    found: dict[str, tuple[float, str]] = {}
    for mode, label in reversed(BENCH_MODES):  # the preferred mode is written last and wins
        for record in records:
            if record["size"] == BENCH_SIZE and record["mode"] == mode and record["status"] == "ok":
                try:
                    found[record["model"]] = (float(record["seconds"]), label)
                except ValueError:
                    continue
    return (
        found,
        f"{BENCH_CSV.as_posix()} beside these tables "
        f"(median seconds at {BENCH_SIZE.replace('x', '×')} on zoo predict's path: tiled where it tiles)",
    )
