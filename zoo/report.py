"""Tables and plots from result rows. ``format_rows`` prints a quick console table; ``write_report`` regenerates the
report in ``results/`` from the rows in ``results/runs/`` alone, deterministically (same rows → same bytes).

How rows become tables (results/README.md explains every output file and column):
- **Tags choose the table.** A tag ``family/variant`` (set by the ablation sweeps) puts a row in table ``family`` under
  the label "model (variant)"; a plain tag (``zoo``, ``smoke``) puts it in that table under the model name; untagged
  rows form table ``untagged``. A run reached by several sweeps carries all their tags (``zoo.run``) and appears in
  each of their tables.
- **Never mix protocols.** Rows whose metric protocol (``metrics.PROTOCOL`` as recorded), scale rule or evaluation data
  differ go to separate tables; each table names its protocol, and the full parameters are listed once.
- **Variants and CIs.** Within a table, rows with the same label and the same config apart from the seed form one
  variant. Each metric is the mean over its seeds × evaluation images with a two-level bootstrap 95 % CI
  (``zoo.stats``; fixed generator seed).
- **Statistics.** Each variant's paired per-image PU21-PSNR difference to the table's best (same images, seed means
  per image) with a bootstrap 95 % CI, and its bootstrap probability of being best. The SI-HDR rule of thumb (a
  PU21-PSNR difference below 3.5 dB is one observers would not confirm, Hanji et al. 2022) is its own column, "n.s.".
- **Failed runs** are listed with their error, never averaged.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo.data.config import TRAIN_ONLY_KEYS
from zoo.errors import ZooError
from zoo.stats import Estimate, bootstrap_ci

if TYPE_CHECKING:
    from zoo.plots import PlotResult

log = logging.getLogger(__name__)

# The two protocols, never mixed in one table: NTIRE 2021 (relative HDR, μ-law with the reference's percentile) and
# SI-HDR (absolute luminance, PU21, raw and CRF-corrected). HEADLINE keeps the four columns of the short console view.
NTIRE_COLUMNS = ("psnr_l_ntire", "psnr_mu_ntire", "ssim_mu_ntire")
SIHDR_COLUMNS = ("pu21_psnr_rgb", "pu21_psnr_rgb_crf", "pu21_psnr_y", "pu21_psnr_y_crf", "pu21_ssim_y",
                 "pu21_ssim_y_crf")  # fmt: skip
ESTIMATED = NTIRE_COLUMNS + SIHDR_COLUMNS
HEADLINE = ("psnr_l_ntire", "psnr_mu_ntire", "ssim_mu_ntire", "pu21_psnr_rgb")
METRIC_NAMES = {"psnr_l_ntire": "PSNR-L (dB)", "psnr_mu_ntire": "PSNR-µ (dB)", "ssim_mu_ntire": "SSIM-µ",
                "pu21_psnr_rgb": "PU21-PSNR (dB)", "pu21_psnr_rgb_crf": "PU21-PSNR CRF (dB)",
                "pu21_psnr_y": "PU21-PSNR-Y (dB)", "pu21_psnr_y_crf": "PU21-PSNR-Y CRF (dB)",
                "pu21_ssim_y": "PU21-SSIM-Y", "pu21_ssim_y_crf": "PU21-SSIM-Y CRF"}  # fmt: skip
DIGITS = {m: 4 if "ssim" in m else 2 for m in ESTIMATED}
SIGNIFICANCE_METRIC = "pu21_psnr_rgb"
SIGNIFICANCE_DB = 3.5  # SI-HDR benchmark: smaller PU21-PSNR differences are not significant
GENERATED = ("summary.csv", "failed.csv", "tables.md", "tables.tex", "index.html")
PLOTS_DIR = "plots"
BENCH_CSV = Path("bench") / "speed.csv"


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


# ----------------------------------------------------------------------------------------------------------------------
# rows → variants → tables


@dataclass
class Variant:
    """One table line: the rows (seeds) of one config, with their bootstrap estimates and efficiency figures."""

    label: str
    model: str
    baseline: bool
    config: dict[str, Any]  # the rows' semantic config without the seed
    rows: list[dict[str, Any]]  # status "ok", sorted by seed
    estimates: dict[str, Estimate] = field(default_factory=dict)
    gmacs: float = math.nan
    bench_seconds: float = math.nan
    bench_mode: str = ""

    @property
    def seeds(self) -> list[int]:
        return [int(r.get("seed", 0)) for r in self.rows]

    @property
    def n_images(self) -> int:
        return len({im["image"] for r in self.rows for im in r.get("images", [])})

    def mean_of(self, key: str) -> float:
        values = [float(r[key]) for r in self.rows if isinstance(r.get(key), int | float)]
        return float(np.mean(values)) if values else math.nan

    @property
    def train(self) -> dict[str, Any]:
        return self.config.get("train", {})


@dataclass
class Table:
    """Variants evaluated under one protocol on one evaluation split; ``key`` is file-name safe."""

    key: str
    family: str
    protocol_id: str
    protocol: dict[str, Any]
    scale_rule: str
    data: dict[str, Any]
    variants: list[Variant]
    paired: dict[str, Estimate] = field(default_factory=dict)  # label → PU21 difference to the best, paired by image
    p_best: dict[str, float] = field(default_factory=dict)  # label → bootstrap probability of having the best PU21

    @property
    def best(self) -> Variant | None:
        scored = [v for v in self.variants if math.isfinite(v.estimates[SIGNIFICANCE_METRIC].mean)]
        return max(scored, key=lambda v: v.estimates[SIGNIFICANCE_METRIC].mean) if scored else None

    def delta(self, variant: Variant) -> float:
        """PU21-PSNR of ``variant`` minus the table's best (≤ 0), in dB."""
        best = self.best
        if best is None:
            return math.nan
        return variant.estimates[SIGNIFICANCE_METRIC].mean - best.estimates[SIGNIFICANCE_METRIC].mean

    def significance(self, variant: Variant) -> str:
        """The SI-HDR rule of thumb (not a statistical test): "best", "n.s." (within 3.5 dB PU21-PSNR of the best),
        "" (at least 3.5 dB worse) or "?" (no value). ``paired`` and ``p_best`` hold the statistics."""
        delta = self.delta(variant)
        if not math.isfinite(delta):
            return "?"
        if variant is self.best:
            return "best"
        return "n.s." if -delta < SIGNIFICANCE_DB else ""


def tags_of(row: dict[str, Any]) -> list[str]:
    """Every tag the row was reached with (``tags``; older rows have only ``tag``)."""
    tags = row.get("tags") or [row.get("tag", "")]
    return list(dict.fromkeys(str(t) for t in tags))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _eval_key(row: dict[str, Any]) -> str:
    """What must agree for rows to share a table: metric protocol, scale rule and the evaluation data."""
    data = {k: v for k, v in row.get("config", {}).get("data", {}).items() if k not in TRAIN_ONLY_KEYS}
    return _canonical({"protocol": row.get("protocol"), "scale_rule": row.get("scale_rule"), "data": data})


def _variant_key(row: dict[str, Any]) -> str:
    return _canonical({k: v for k, v in row.get("config", {}).items() if k != "seed"})


def _is_baseline(row: dict[str, Any]) -> bool:
    try:
        from zoo.registry import get_spec

        return get_spec(row["model"]).is_baseline
    except Exception:  # a model no longer registered: judge by the row (no parameters, no training)
        return row.get("params") == 0 and row.get("steps") == 0


def _place(row: dict[str, Any], tag: str) -> tuple[str, str]:
    """(table family, label) of ``row`` under ``tag``."""
    family, _, variant = tag.partition("/")
    label = f"{row['model']} ({variant})" if variant else row["model"]
    return family or "untagged", label


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = _canonical(value)
    return flat


def _disambiguate(variants: list[Variant]) -> None:
    """Variants that share a label (e.g. one model at two budgets) get the config values that tell them apart."""
    by_label: dict[str, list[Variant]] = defaultdict(list)
    for variant in variants:
        by_label[variant.label].append(variant)
    for group in by_label.values():
        if len(group) < 2:
            continue
        flats = [_flatten(v.config) for v in group]
        keys = sorted({k for f in flats for k in f if len({g.get(k) for g in flats}) > 1})
        for variant, flat in zip(group, flats):
            variant.label += " [" + ", ".join(f"{k}={flat.get(k, '-')}" for k in keys[:3]) + "]"


def _estimate(rows: list[dict[str, Any]], metric: str) -> Estimate:
    """Bootstrap estimate over the (seeds × images) grid; images are matched by id across seeds."""
    ids = sorted({im["image"] for r in rows for im in r.get("images", [])})
    if not ids or not any(metric in im for r in rows for im in r.get("images", [])):
        return Estimate(math.nan, math.nan, math.nan, 0)  # not measured (a row older than the metric): n/a, no note
    column = {image_id: j for j, image_id in enumerate(ids)}
    grid = np.full((len(rows), len(ids)), np.nan)
    for i, row in enumerate(rows):
        for im in row.get("images", []):
            value = im.get(metric)
            grid[i, column[im["image"]]] = float(value) if isinstance(value, int | float) else math.nan
    return bootstrap_ci(grid)


def _per_image(variant: Variant, metric: str) -> dict[str, float]:
    """Mean over the variant's seeds of ``metric`` per image id (finite values only)."""
    values: dict[str, list[float]] = defaultdict(list)
    for row in variant.rows:
        for im in row.get("images", []):
            value = im.get(metric)
            if isinstance(value, int | float) and math.isfinite(value):
                values[im["image"]].append(float(value))
    return {k: float(np.mean(v)) for k, v in values.items()}


def paired_statistics(table: Table, metric: str = SIGNIFICANCE_METRIC, n_resamples: int = 2000,
                      seed: int = 0) -> None:  # fmt: skip
    """Fill ``table.paired`` (each variant's per-image difference to the best variant on the images both scored,
    seed means per image, bootstrap 95 % CI) and ``table.p_best`` (how often each variant has the highest mean over
    the images common to all, when the images are resampled with replacement)."""
    best = table.best
    if best is None:
        return
    per_image = {v.label: _per_image(v, metric) for v in table.variants}
    reference = per_image[best.label]
    for v in table.variants:
        common = sorted(set(per_image[v.label]) & set(reference))
        diffs = [per_image[v.label][i] - reference[i] for i in common]
        table.paired[v.label] = bootstrap_ci(np.asarray(diffs)) if diffs else bootstrap_ci([[math.nan]])
    scored = [v for v in table.variants if per_image[v.label]]
    shared = sorted(set.intersection(*(set(per_image[v.label]) for v in scored))) if scored else []
    if not shared:
        return
    grid = np.array([[per_image[v.label][i] for i in shared] for v in scored])  # variants × images
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(shared), size=(n_resamples, len(shared)))
    winners = np.argmax(grid[:, draws].mean(axis=2), axis=0)  # (n_resamples,)
    counts = np.bincount(winners, minlength=len(scored))
    table.p_best = {v.label: float(c / n_resamples) for v, c in zip(scored, counts)}


def build_tables(rows: list[dict[str, Any]], bench: dict[str, tuple[float, str]] | None = None) -> list[Table]:
    """Group finished rows into tables of variants (see the module docstring); deterministic for the same rows."""
    from zoo.complexity import gmacs

    groups: dict[tuple[str, str], dict[tuple[str, str], list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.get("status") != "ok":
            continue
        for tag in tags_of(row):
            family, label = _place(row, tag)
            groups[(family, _eval_key(row))][(label, _variant_key(row))].append(row)

    protocol_ids: dict[str, str] = {}
    tables: list[Table] = []
    families = sorted({f for f, _ in groups}, key=lambda f: (f != "zoo", f == "untagged", f == "smoke", f))
    for family in families:
        eval_keys = sorted(k for f, k in groups if f == family)
        for n, eval_key in enumerate(eval_keys):
            variants = []
            for (label, _), members in sorted(groups[(family, eval_key)].items()):
                members = sorted(members, key=lambda r: (int(r.get("seed", 0)), r["run_id"]))
                first = members[0]
                variant = Variant(label=label, model=first["model"], baseline=_is_baseline(first),
                                  config={k: v for k, v in first.get("config", {}).items() if k != "seed"},
                                  rows=members)  # fmt: skip
                variant.estimates = {m: _estimate(members, m) for m in ESTIMATED}
                variant.gmacs = gmacs(first["model"], variant.config.get("model", {}).get("args", {}))
                if not variant.config.get("model", {}).get("args"):  # the benchmark runs the official variant only
                    variant.bench_seconds, variant.bench_mode = (bench or {}).get(first["model"], (math.nan, ""))
                variants.append(variant)
            _disambiguate(variants)
            variants.sort(key=lambda v: (v.baseline, v.label))
            evaluation = json.loads(eval_key)
            protocol_ids.setdefault(_canonical(evaluation["protocol"]), f"P{len(protocol_ids) + 1}")
            table = Table(
                key=family if len(eval_keys) == 1 else f"{family}-{n + 1}", family=family,
                protocol_id=protocol_ids[_canonical(evaluation["protocol"])], protocol=evaluation["protocol"] or {},
                scale_rule=str(evaluation["scale_rule"]), data=evaluation["data"], variants=variants,
            )  # fmt: skip
            paired_statistics(table)
            tables.append(table)
    return tables


# ----------------------------------------------------------------------------------------------------------------------
# inputs: rows and the optional speed benchmark


def load_run_rows(runs_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of ``runs_dir`` sorted by (model, tag, seed, run id), and the names of unreadable files. Hidden files
    (a row being written by a running sweep) are ignored."""
    from zoo.results import read_row

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
BENCH_MODES = (("optimized", "untiled"), ("tiled", "tiled"))  # preferred first: the zoo's own inference path
BENCH_COLUMNS = ("model", "size", "mode", "status", "seconds")


def read_bench(path: Path) -> tuple[dict[str, tuple[float, str]], str]:
    """{model: (seconds per image at 1900×1060, mode)} from ``benchmarks/speed.py``'s CSV (columns model, size, mode,
    status, seconds): the untiled zoo path where measured, else the tiled one; and a note saying what was used.
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
    return found, f"{BENCH_CSV.as_posix()} beside these tables (seconds at {BENCH_SIZE.replace('x', '×')}, untiled where measured)"


# ----------------------------------------------------------------------------------------------------------------------
# formatting


def _num(value: float, digits: int) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"


def _ci_text(est: Estimate, digits: int) -> str:
    if not math.isfinite(est.mean):
        return "n/a"
    return f"{est.mean:.{digits}f} [{est.low:.{digits}f}, {est.high:.{digits}f}]"


def _bench_text(variant: Variant) -> str:
    if not math.isfinite(variant.bench_seconds):
        return "n/a"
    return f"{variant.bench_seconds:.2f} ({variant.bench_mode})"


def _delta_text(table: Table, variant: Variant) -> str:
    """The paired PU21 difference to the best with its CI, e.g. "-2.31 [-3.40, -1.22]"."""
    flag = table.significance(variant)
    if flag in ("best", "?"):
        return {"best": "best", "?": "n/a"}[flag]
    paired = table.paired.get(variant.label)
    if paired is None or not math.isfinite(paired.mean):
        return f"{table.delta(variant):+.2f}"
    return f"{paired.mean:+.2f} [{paired.low:+.2f}, {paired.high:+.2f}]"


def _rule_text(table: Table, variant: Variant) -> str:
    return {"best": "best", "?": "n/a", "n.s.": f"< {SIGNIFICANCE_DB:g} dB"}.get(table.significance(variant),
                                                                                 f"≥ {SIGNIFICANCE_DB:g} dB")


def _p_best_text(table: Table, variant: Variant) -> str:
    p = table.p_best.get(variant.label)
    return "n/a" if p is None else f"{p:.2f}"


def _eval_size(data: dict[str, Any]) -> str:
    h, w = data.get("eval_height"), data.get("eval_width")
    return f"{h}×{w}" if h and w else "full frames"


def _protocol_summary(protocol: dict[str, Any], scale_rule: str) -> str:
    p = protocol
    parts = [f"metrics v{p.get('metrics_version', '?')}", f"input {p.get('input_encoding', '?')}",
             f"µ-law µ={p.get('ntire_mu', '?')} with the reference's {p.get('ntire_percentile', '?')}th percentile",
             f"PU21 {p.get('pu21_params', '?')}, reference peak → {p.get('pu21_peak_luminance', '?')} cd/m²",
             "CRF correction " + ("in the *_crf columns" if p.get("crf_correction") else "off"),
             f"scale rule {scale_rule}"]  # fmt: skip
    return "; ".join(parts)


def _data_summary(table: Table) -> str:
    d = table.data
    n = max((v.n_images for v in table.variants), default=0)
    camera = d.get("camera", {})
    extra = f", eval clip fraction {camera['eval_clip_fraction']}" if "eval_clip_fraction" in camera else ""
    source = f"data `{d.get('name', '?')}` (data.seed {d.get('seed', '?')})"
    return f"{source}, {n} evaluation images at {_eval_size(d)}{extra}"


def _markdown_table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in lines]
    return "\n".join(out)


def _table_lines(table: Table) -> tuple[list[str], list[list[str]]]:
    """The NTIRE-protocol table with each variant's cost."""
    header = ["model", "seeds", *(METRIC_NAMES[m] for m in NTIRE_COLUMNS), "params", "GMACs",
              f"s/image ({_eval_size(table.data)})", "s/image 1900×1060 (bench)", "train min", "steps×batch"]  # fmt: skip
    lines = []
    for v in table.variants:
        params = v.mean_of("params")
        if v.baseline:
            budget = "—"
        elif v.train:
            budget = f"{v.train.get('steps', '?')}×{v.train.get('batch_size', '?')}"
        else:  # a zoo eval row: the checkpoint's training steps (its batch size is in the model card)
            budget = f"{v.mean_of('steps'):.0f} steps" if math.isfinite(v.mean_of("steps")) else "n/a"
        lines.append([
            v.label, str(len(v.rows)), *(_ci_text(v.estimates[m], DIGITS[m]) for m in NTIRE_COLUMNS),
            f"{int(params):,}" if math.isfinite(params) else "n/a", _num(v.gmacs, 1),
            _num(v.mean_of("seconds_per_image"), 3), _bench_text(v), _num(v.mean_of("train_seconds") / 60, 1),
            budget,
        ])  # fmt: skip
    return header, lines


def _sihdr_lines(table: Table) -> tuple[list[str], list[list[str]]]:
    """The SI-HDR-protocol table with the paired statistics against the best variant."""
    header = ["model", "seeds", *(METRIC_NAMES[m] for m in SIHDR_COLUMNS), "Δ PU21 vs best (paired)", "P(best)",
              "SI-HDR 3.5 dB rule"]  # fmt: skip
    lines = [[v.label, str(len(v.rows)), *(_ci_text(v.estimates[m], DIGITS[m]) for m in SIHDR_COLUMNS),
              _delta_text(table, v), _p_best_text(table, v), _rule_text(table, v)] for v in table.variants]  # fmt: skip
    return header, lines


def _notes(table: Table) -> list[str]:
    notes = []
    for v in table.variants:
        excluded = {m: v.estimates[m].excluded for m in ESTIMATED if v.estimates[m].excluded}
        if excluded:
            notes.append(f"{v.label}: non-finite per-image values left out of the mean ({_canonical(excluded)}; +inf "
                         f"PSNR means an image was reproduced exactly)")  # fmt: skip
    return notes


def render_markdown(tables: list[Table], failed: list[dict[str, Any]], unreadable: list[str], bench_note: str,
                    plots: PlotResult | None, source: str = "results/runs") -> str:  # fmt: skip
    out = ["# Results", "",
           f"Generated by `zoo report` from `{source}` (do not edit; `make report` regenerates it). Metrics: mean "
           "over seeds × evaluation images with a two-level bootstrap 95 % CI [low, high]. `Δ PU21 vs best "
           "(paired)`: the per-image PU21-PSNR difference to the table's best variant on the same images (seed means "
           "per image), mean and bootstrap 95 % CI; an interval that excludes 0 is a difference these images "
           "support. `P(best)`: how often the variant has the highest mean PU21-PSNR when the images are resampled. "
           f"`SI-HDR 3.5 dB rule`: the SI-HDR rule of thumb that differences below {SIGNIFICANCE_DB:g} dB PU21-PSNR "
           "are not visible to observers (Hanji et al. 2022), not a statistical test. GMACs: one forward pass at 1900×1060, counted from the code. `s/image`: evaluation "
           "time per image as recorded in the rows (shared CPU, see README)" + (f"; bench: {bench_note}" if bench_note
           else "") + ".", ""]  # fmt: skip
    for table in tables:
        header, lines = _table_lines(table)
        sihdr_header, sihdr = _sihdr_lines(table)
        out += [f"## {table.key}", "",
                f"Protocol {table.protocol_id}: {_protocol_summary(table.protocol, table.scale_rule)}. "
                f"{_data_summary(table)}.", "", "NTIRE 2021 protocol:", "", _markdown_table(header, lines), "",
                "SI-HDR protocol (absolute luminance, reference peak → "
                f"{table.protocol.get('pu21_peak_luminance', '?')} cd/m², PU21; CRF: after the SI-HDR CRF correction; "
                "n/a: rows made before these metrics existed):", "", _markdown_table(sihdr_header, sihdr), ""]  # fmt: skip
        notes = _notes(table) + (plots.notes.get(table.key, []) if plots else [])
        out += [f"- {note}" for note in notes] + ([""] if notes else [])
        for name in plots.figures.get(table.key, []) if plots else []:
            out += [f"![{table.key} {name}]({PLOTS_DIR}/{table.key}_{name}.png)", ""]
    out += ["## Failed runs", ""]
    if failed:
        out += [_markdown_table(["run id", "model", "tags", "seed", "error"],
                                [[r["run_id"], str(r.get("model", "?")), ", ".join(tags_of(r)), str(r.get("seed", "?")),
                                  str(r.get("error", ""))] for r in failed]), ""]  # fmt: skip
    else:
        out += ["None.", ""]
    if unreadable:
        out += ["Unreadable row files (skipped):", ""] + [f"- {u}" for u in unreadable] + [""]
    out += ["## Protocols", ""]
    seen: dict[str, dict[str, Any]] = {}
    for table in tables:
        seen.setdefault(table.protocol_id, table.protocol)
    for pid, protocol in seen.items():
        out += [f"{pid}:", "", "```json", json.dumps(protocol, indent=1, sort_keys=True), "```", ""]
    return "\n".join(out).rstrip() + "\n"


# Backslash first; brackets are braced so that a cell never reads as an optional argument.
TEX_REPLACEMENTS = (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"), ("`", ""),
                    ("µ", r"$\mu$"), ("μ", r"$\mu$"), ("×", r"$\times$"), ("Δ", r"$\Delta$"), ("—", "--"),
                    ("→", r"$\to$"), ("²", r"$^2$"), ("[", "{["), ("]", "]}"))


def _tex_escape(text: str) -> str:
    for a, b in TEX_REPLACEMENTS:
        text = text.replace(a, b)
    return text


LATEX_COLUMNS = ("pu21_psnr_rgb", "pu21_psnr_rgb_crf", "pu21_psnr_y_crf")  # the SI-HDR protocol, as papers quote it


def render_latex(tables: list[Table], source: str = "results/runs") -> str:
    """One booktabs table (SI-HDR protocol) per results table; needs \\usepackage{booktabs}."""
    out = [f"% Generated by `zoo report` from {source} (do not edit). Needs \\usepackage{{booktabs}}.", ""]
    for table in tables:
        columns = ["Model", *(METRIC_NAMES[m] for m in LATEX_COLUMNS), "Δ PU21", "Params", "GMACs"]
        caption = (f"{table.key}: mean [95 % bootstrap CI] over seeds and evaluation images. Protocol "
                   f"{table.protocol_id}: {_protocol_summary(table.protocol, table.scale_rule)}. "
                   f"{_data_summary(table)}. n.s.: within {SIGNIFICANCE_DB} dB PU21-PSNR of the best.")  # fmt: skip
        out += [r"\begin{table}[t]", r"\centering", r"\small", r"\caption{" + _tex_escape(caption) + "}",
                r"\label{tab:" + table.key.replace("_", "-") + "}",
                r"\begin{tabular}{l" + "c" * (len(columns) - 1) + "}", r"\toprule",
                " & ".join(_tex_escape(c) for c in columns) + r" \\", r"\midrule"]  # fmt: skip
        for v in table.variants:
            cells = [v.label, *(_ci_text(v.estimates[m], DIGITS[m]) for m in LATEX_COLUMNS), _delta_text(table, v),
                     f"{v.mean_of('params') / 1e6:.2f}M" if math.isfinite(v.mean_of("params")) else "n/a",
                     _num(v.gmacs, 1)]  # fmt: skip
            out.append(" & ".join(_tex_escape(c) for c in cells) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def _csv_text(header: list[str], lines: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(lines)
    return buffer.getvalue()


def _csv_num(value: float, digits: int = 4) -> str:
    return "" if not math.isfinite(value) else f"{value:.{digits}f}"


def render_summary_csv(tables: list[Table]) -> str:
    header = ["table", "label", "model", "baseline", "n_seeds", "seeds", "n_images"]
    for m in ESTIMATED:
        header += [f"{m}_mean", f"{m}_ci_low", f"{m}_ci_high"]
    header += ["pu21_delta_vs_best", "significance_vs_best", "pu21_paired_delta", "pu21_paired_low", "pu21_paired_high",
               "p_best", "params", "gmacs_1900x1060", "seconds_per_image_eval",
               "seconds_per_image_bench", "bench_mode", "train_seconds", "steps", "batch_size", "protocol", "run_ids"]  # fmt: skip
    lines = []
    for table in tables:
        for v in table.variants:
            line: list[Any] = [table.key, v.label, v.model, int(v.baseline), len(v.rows), " ".join(map(str, v.seeds)),
                               v.n_images]  # fmt: skip
            for m in ESTIMATED:
                e = v.estimates[m]
                line += [_csv_num(e.mean), _csv_num(e.low), _csv_num(e.high)]
            params = v.mean_of("params")
            paired = table.paired.get(v.label)
            line += [_csv_num(table.delta(v)), table.significance(v),
                     *(_csv_num(getattr(paired, k)) if paired else "" for k in ("mean", "low", "high")),
                     _csv_num(table.p_best[v.label]) if v.label in table.p_best else "",
                     "" if not math.isfinite(params) else int(params),
                     _csv_num(v.gmacs, 3), _csv_num(v.mean_of("seconds_per_image")), _csv_num(v.bench_seconds), v.bench_mode,
                     _csv_num(v.mean_of("train_seconds"), 1), v.train.get("steps", ""), v.train.get("batch_size", ""),
                     table.protocol_id, " ".join(r["run_id"] for r in v.rows)]  # fmt: skip
            lines.append(line)
    return _csv_text(header, lines)


def render_failed_csv(failed: list[dict[str, Any]]) -> str:
    return _csv_text(["run_id", "model", "tags", "seed", "error"],
                     [[r["run_id"], r.get("model", ""), " ".join(tags_of(r)), r.get("seed", ""), r.get("error", "")]
                      for r in failed])  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------------
# the report


def write_report(runs_dir: Path, out_dir: Path, plots: bool = True) -> str:
    """Regenerate ``out_dir``/{summary.csv, failed.csv, tables.md, tables.tex} (and ``out_dir``/plots/ when ``plots``)
    from the rows in ``runs_dir``; returns the Markdown tables for the console. Reads ``out_dir``/bench/speed.csv when the
    speed benchmark wrote it."""
    from zoo.io import atomic_write, check_writable_folder
    from zoo.webpage import PAGE_NAME, render_page

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
        from zoo.plots import write_plots

        figures = write_plots(tables, runs_dir, out_dir / PLOTS_DIR)
    markdown = render_markdown(tables, failed, unreadable, bench_note, figures, runs_dir.as_posix())
    texts = {"summary.csv": render_summary_csv(tables), "failed.csv": render_failed_csv(failed),
             "tables.md": markdown, "tables.tex": render_latex(tables, runs_dir.as_posix()),
             PAGE_NAME: render_page(tables, runs_dir, runs_dir.as_posix())}  # fmt: skip
    for name, text in texts.items():
        atomic_write(out_dir / name, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    log.info("report: %d runs (%d failed) → %d tables in %s", len(rows), len(failed), len(tables), out_dir)
    console = markdown.split("\n## Protocols", 1)[0]
    console = re.sub(r"\n(!\[[^\n]*\n\n)+", "\n", console).rstrip() + "\n"  # figure links are for the Markdown file
    return console
