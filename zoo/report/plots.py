"""The report's figures (matplotlib, Agg backend), each written as PNG and PDF to ``results/plots/<table>_<name>``:

- ``metrics``: the four headline metrics per variant, bars with their bootstrap 95 % CIs;
- ``gmacs`` / ``latency``: PU21-PSNR (with CI) against GMACs at 1900×1060 and against seconds per image;
- ``training``: each objective's loss against the step (rows' ``history``, mean over seeds);
- ``visual``: μ-law tone-mapped crops of the first evaluation image (input, each variant, reference) with each
  variant's error map |μ(prediction) − μ(reference)|, from the previews the runs saved (``zoo.preview``).

Figures are written atomically and carry no timestamps, so regenerating them from the same rows gives the same files.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.io import atomic_write
from zoo.preview import load_preview, preview_path
from zoo.report.tables import HEADLINE, METRIC_NAMES, Table, Variant

log = logging.getLogger(__name__)

FORMATS = ("png", "pdf")
DPI = 120
METRIC = "pu21_psnr_rgb"


@dataclass
class PlotResult:
    """Figure names written per table key, and notes for the tables (e.g. a model missing from the visual grid)."""

    figures: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)


def write_plots(tables: list[Table], runs_dir: Path, plots_dir: Path) -> PlotResult:
    """Draw every figure of every table into ``plots_dir``; stale figures of tables that no longer exist are removed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 8, "svg.hashsalt": "zoo"})
    plots_dir.mkdir(parents=True, exist_ok=True)
    result = PlotResult()
    written: set[Path] = set()
    colours = _colours(tables)
    for table in tables:
        names, notes = [], []
        for name, draw in (
            ("metrics", _metrics),
            ("gmacs", _gmacs),
            ("latency", _latency),
            ("training", _training),
            ("visual", _visual),
        ):
            fig = draw(plt, table, colours, runs_dir, notes)
            if fig is None:
                continue
            for fmt in FORMATS:
                written.add(_save(fig, plots_dir / f"{table.key}_{name}.{fmt}"))
            plt.close(fig)
            names.append(name)
        result.figures[table.key] = names
        result.notes[table.key] = notes
    for stale in sorted(plots_dir.glob("*")):
        if stale.suffix.lstrip(".") in FORMATS and stale not in written:
            stale.unlink()
    return result


def _save(fig: Any, path: Path) -> Path:
    metadata = {"CreationDate": None} if path.suffix == ".pdf" else {}
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=DPI, metadata=metadata, bbox_inches="tight"))


def _colours(tables: list[Table]) -> dict[str, Any]:
    """One colour per model, the same in every figure."""
    import matplotlib

    models = sorted({v.model for t in tables for v in t.variants})
    cmap = matplotlib.colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(models)}


MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINES = ("-", "--", ":", "-.")


def _styles(table: Table, colours: dict[str, Any]) -> dict[str, tuple[Any, str, str]]:
    """Variant label → (colour of its model, marker, line style); variants of one model differ by marker and line."""
    seen: dict[str, int] = defaultdict(int)
    styles = {}
    for v in table.variants:
        k = seen[v.model]
        styles[v.label] = (colours[v.model], MARKERS[k % len(MARKERS)], LINES[k % len(LINES)])
        seen[v.model] += 1
    return styles


def _title(table: Table) -> str:
    return f"{table.key} (protocol {table.protocol_id})"


def _metrics(plt: Any, table: Table, colours: dict[str, Any], runs_dir: Path, notes: list[str]) -> Any:
    """Mean and CI per variant as a point with whiskers (bars would need a zero baseline that hides dB differences)."""
    styles = _styles(table, colours)
    labels = [v.label for v in table.variants]
    fig, axes = plt.subplots(1, len(HEADLINE), figsize=(2.9 * len(HEADLINE), 0.9 + 0.3 * len(labels)), sharey=True)
    for ax, metric in zip(axes, HEADLINE):
        for y, v in enumerate(table.variants):
            e = v.estimates[metric]
            if math.isfinite(e.mean):
                colour, marker, _ = styles[v.label]
                ax.errorbar(
                    [e.mean], [y], xerr=[[e.mean - e.low], [e.high - e.mean]], fmt=marker, color=colour, capsize=3, ms=5
                )
        ax.set_title(METRIC_NAMES[metric])
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.15)
    axes[0].set_yticks(range(len(labels)), labels)
    axes[0].set_ylim(len(labels) - 0.5, -0.5)
    fig.suptitle(f"{_title(table)}: mean and 95 % bootstrap CI over seeds × images")
    fig.tight_layout()
    return fig


def _scatter(plt: Any, table: Table, colours: dict[str, Any], xs: list[float], xlabel: str) -> Any:
    styles = _styles(table, colours)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    drawn = 0
    for v, x in zip(table.variants, xs):
        e = v.estimates[METRIC]
        if not (math.isfinite(x) and math.isfinite(e.mean)):
            continue
        colour, marker, _ = styles[v.label]
        ax.errorbar(
            [x],
            [e.mean],
            yerr=[[e.mean - e.low], [e.high - e.mean]],
            fmt=marker,
            color=colour,
            capsize=3,
            label=v.label,
            ms=6,
        )
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PU21-PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_title(f"{_title(table)}: quality vs cost")
    fig.tight_layout()
    return fig


def _gmacs(plt: Any, table: Table, colours: dict[str, Any], runs_dir: Path, notes: list[str]) -> Any:
    return _scatter(plt, table, colours, [v.gmacs for v in table.variants], "GMACs per 1900×1060 image (counted)")


def _latency(plt: Any, table: Table, colours: dict[str, Any], runs_dir: Path, notes: list[str]) -> Any:
    bench = [v.bench_seconds for v in table.variants]
    if any(math.isfinite(b) for b in bench):
        return _scatter(plt, table, colours, bench, "seconds per image (speed benchmark)")
    size = f"{table.data.get('eval_height')}×{table.data.get('eval_width')}"
    seconds = [v.mean_of("seconds_per_image") for v in table.variants]
    return _scatter(plt, table, colours, seconds, f"seconds per image at {size} (evaluation, from the rows)")


def _curves(variant: Variant) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Objective loss → (steps, mean over seeds) from the rows' histories; keys ending in "/loss" only."""
    per_key: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in variant.rows:
        for entry in row.get("history", []):
            for key, value in entry.items():
                if key.endswith("/loss") and isinstance(value, int | float) and math.isfinite(value):
                    per_key[key][int(entry["step"])].append(float(value))
    return {key: (np.array(sorted(d)), np.array([np.mean(d[s]) for s in sorted(d)])) for key, d in per_key.items()}


def _training(plt: Any, table: Table, colours: dict[str, Any], runs_dir: Path, notes: list[str]) -> Any:
    styles = _styles(table, colours)
    curves = {v.label: _curves(v) for v in table.variants if not v.baseline}
    keys = sorted({k for c in curves.values() for k in c})
    if not keys:
        return None
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        values = []
        for label, c in curves.items():
            if key in c:
                steps, mean = c[key]
                colour, marker, line = styles[label]
                ax.plot(
                    steps,
                    mean,
                    line,
                    marker=marker if len(steps) <= 20 else None,
                    ms=3,
                    color=colour,
                    label=label,
                    lw=1.2,
                )
                values.append(mean)
        flat = np.concatenate(values)
        if (flat > 0).all() and flat.max() / flat.min() > 10:  # log only where it helps
            ax.set_yscale("log")
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.suptitle(f"{_title(table)}: training losses (mean over seeds)")
    fig.tight_layout()
    return fig


def _visual(plt: Any, table: Table, colours: dict[str, Any], runs_dir: Path, notes: list[str]) -> Any:
    panels: list[tuple[str, dict[str, np.ndarray]]] = []
    missing, mismatched = [], []
    for v in table.variants:
        path = next(
            (
                preview_path(runs_dir / f"{r['run_id']}.json")
                for r in v.rows
                if preview_path(runs_dir / f"{r['run_id']}.json").is_file()
            ),
            None,
        )
        if path is None:
            missing.append(v.label)
            continue
        preview = load_preview(path)
        if panels and not np.array_equal(preview["input"], panels[0][1]["input"]):
            mismatched.append(v.label)
            continue
        panels.append((v.label, preview))
    if missing:
        notes.append(f"visual grid: no preview image for {', '.join(missing)} (rows written before previews existed)")
    if mismatched:
        notes.append(f"visual grid: {', '.join(mismatched)} left out (their preview shows another input)")
    if not panels:
        return None
    reference = panels[0][1]["reference"]
    errors = [np.abs(p["prediction"] - reference).mean(axis=2) for _, p in panels]
    vmax = max(0.05, float(max(np.percentile(e, 99) for e in errors)))
    cols = len(panels) + 2
    fig, axes = plt.subplots(2, cols, figsize=(1.7 * cols, 3.7), squeeze=False)
    images = [("input (LDR)", panels[0][1]["input"])] + [(label, p["prediction"]) for label, p in panels]
    images.append(("reference", reference))
    for ax, (label, image) in zip(axes[0], images):
        ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
        ax.set_title(label, fontsize=7)
    shown = None
    for ax, error in zip(axes[1, 1:], errors):
        shown = ax.imshow(error, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in (axes[1, 0], axes[1, -1]):
        ax.axis("off")
    axes[1, 1].set_ylabel("|error|, μ-law", fontsize=7)
    if shown is not None:
        fig.colorbar(shown, ax=list(axes[1, 1:-1]), fraction=0.03, pad=0.01)
    fig.suptitle(f"{_title(table)}: first evaluation image, μ-law tone-mapped (NTIRE, reference 99th percentile)")
    return fig
