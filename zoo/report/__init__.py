"""The report: ``write_report`` regenerates the tables, plots and results page in ``results/`` from the rows in
``results/runs/`` alone, deterministically (same rows → same bytes); ``format_rows`` prints a quick console table.
How rows become tables is described in ``zoo.report.tables``; results/README.md explains every output file and
column.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from zoo.errors import ZooError
from zoo.io import atomic_write, check_writable_folder
from zoo.report.inputs import BENCH_CSV, load_run_rows, read_bench
from zoo.report.plots import write_plots
from zoo.report.render import (
    PLOTS_DIR,
    format_rows,
    render_failed_csv,
    render_latex,
    render_markdown,
    render_summary_csv,
)
from zoo.report.tables import SIGNIFICANCE_DB, Table, Variant, build_tables
from zoo.report.webpage import PAGE_NAME, render_page

log = logging.getLogger(__name__)

GENERATED = ("summary.csv", "failed.csv", "tables.md", "tables.tex", PAGE_NAME)
__all__ = ["SIGNIFICANCE_DB", "Table", "Variant", "build_tables", "format_rows", "read_bench", "write_report"]


def write_report(runs_dir: Path, out_dir: Path, plots: bool = True) -> str:
    """Regenerate ``out_dir``/{summary.csv, failed.csv, tables.md, tables.tex} (and ``out_dir``/plots/ when ``plots``)
    from the rows in ``runs_dir``; returns the Markdown tables for the console. Reads ``out_dir``/bench/speed.csv when
    the speed benchmark wrote it."""
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    if not runs_dir.is_dir():
        raise ZooError(f"--runs {runs_dir}: no such folder; expected a folder of result rows (*.json); nothing written")
    rows, unreadable = load_run_rows(runs_dir)
    if not rows and not unreadable:
        raise ZooError(f"--runs {runs_dir}: holds no result rows (*.json); nothing written")
    failed = [r for r in rows if r.get("status") != "ok"]
    failed.sort(key=lambda r: (str(r.get("model", "")), int(r.get("seed", 0)), r["run_id"]))
    bench, bench_note = read_bench(out_dir / BENCH_CSV)
    tables = build_tables(rows, bench)
    check_writable_folder(out_dir, f"--out {out_dir}")  # before anything is replaced
    if plots:
        check_writable_folder(out_dir / PLOTS_DIR, f"--out {out_dir}")

    figures = None
    if plots:
        figures = write_plots(tables, runs_dir, out_dir / PLOTS_DIR)
    markdown = render_markdown(tables, failed, unreadable, bench_note, figures, runs_dir.as_posix())
    texts = {
        "summary.csv": render_summary_csv(tables),
        "failed.csv": render_failed_csv(failed),
        "tables.md": markdown,
        "tables.tex": render_latex(tables, runs_dir.as_posix()),
        PAGE_NAME: render_page(tables, runs_dir, runs_dir.as_posix()),
    }
    for name, text in texts.items():
        atomic_write(out_dir / name, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    log.info("report: %d runs (%d failed) → %d tables in %s", len(rows), len(failed), len(tables), out_dir)
    console = markdown.split("\n## Protocols", 1)[0]
    console = re.sub(r"\n(!\[[^\n]*\n\n)+", "\n", console).rstrip() + "\n"  # figure links are for the Markdown file
    return console
