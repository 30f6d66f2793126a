"""Result rows → typed tables (``Table`` of ``Variant``s), with their statistics. Rendering (``render``), plots
(``plots``) and the page (``webpage``) read these records only.

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

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoo.complexity import gmacs
from zoo.data.config import TRAIN_ONLY_KEYS
from zoo.registry import get_spec
from zoo.stats import Estimate, bootstrap_ci

# The two protocols, never mixed in one table: NTIRE 2021 (relative HDR, μ-law with the reference's percentile) and
# SI-HDR (absolute luminance, PU21, raw and CRF-corrected). HEADLINE keeps the four columns of the short console view.
NTIRE_COLUMNS = ("psnr_l_ntire", "psnr_mu_ntire", "ssim_mu_ntire")
SIHDR_COLUMNS = (
    "pu21_psnr_rgb",
    "pu21_psnr_rgb_crf",
    "pu21_psnr_y",
    "pu21_psnr_y_crf",
    "pu21_ssim_y",
    "pu21_ssim_y_crf",
)
ESTIMATED = NTIRE_COLUMNS + SIHDR_COLUMNS
HEADLINE = ("psnr_l_ntire", "psnr_mu_ntire", "ssim_mu_ntire", "pu21_psnr_rgb")
METRIC_NAMES = {
    "psnr_l_ntire": "PSNR-L (dB)",
    "psnr_mu_ntire": "PSNR-µ (dB)",
    "ssim_mu_ntire": "SSIM-µ",
    "pu21_psnr_rgb": "PU21-PSNR (dB)",
    "pu21_psnr_rgb_crf": "PU21-PSNR CRF (dB)",
    "pu21_psnr_y": "PU21-PSNR-Y (dB)",
    "pu21_psnr_y_crf": "PU21-PSNR-Y CRF (dB)",
    "pu21_ssim_y": "PU21-SSIM-Y",
    "pu21_ssim_y_crf": "PU21-SSIM-Y CRF",
}
DIGITS = {m: 4 if "ssim" in m else 2 for m in ESTIMATED}
SIGNIFICANCE_METRIC = "pu21_psnr_rgb"
SIGNIFICANCE_DB = 3.5  # SI-HDR benchmark: smaller PU21-PSNR differences are not significant


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


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True, order=True)
class Evaluation:
    """What must agree for rows to share a table: metric protocol, scale rule and the evaluation data. Equal,
    hashed and ordered by ``identity``, their canonical text (so the tables come out in the same order every time)."""

    identity: str
    protocol: dict[str, Any] = field(compare=False)
    scale_rule: str = field(compare=False)
    data: dict[str, Any] = field(compare=False)

    @classmethod
    def of(cls, row: dict[str, Any]) -> Evaluation:
        data = {k: v for k, v in row.get("config", {}).get("data", {}).items() if k not in TRAIN_ONLY_KEYS}
        protocol, scale_rule = row.get("protocol"), row.get("scale_rule")
        identity = canonical({"protocol": protocol, "scale_rule": scale_rule, "data": data})
        return cls(identity, protocol or {}, str(scale_rule), data)


@dataclass(frozen=True, order=True)
class Placement:
    """Where a row goes inside a table: its label, and its config without the seed (seeds of one config are one
    variant), compared by canonical text."""

    label: str
    config_text: str

    @classmethod
    def of(cls, row: dict[str, Any], label: str) -> Placement:
        return cls(label, canonical({k: v for k, v in row.get("config", {}).items() if k != "seed"}))


def _is_baseline(row: dict[str, Any]) -> bool:
    try:
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
            flat[f"{prefix}{key}"] = canonical(value)
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


def paired_statistics(table: Table, metric: str = SIGNIFICANCE_METRIC, n_resamples: int = 2000, seed: int = 0) -> None:
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
    groups: dict[tuple[str, Evaluation], dict[Placement, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.get("status") != "ok":
            continue
        for tag in tags_of(row):
            family, label = _place(row, tag)
            groups[(family, Evaluation.of(row))][Placement.of(row, label)].append(row)

    protocol_ids: dict[str, str] = {}
    tables: list[Table] = []
    families = sorted({f for f, _ in groups}, key=lambda f: (f != "zoo", f == "untagged", f == "smoke", f))
    for family in families:
        evaluations = sorted(e for f, e in groups if f == family)
        for n, evaluation in enumerate(evaluations):
            variants = []
            for placement, members in sorted(groups[(family, evaluation)].items()):
                members = sorted(members, key=lambda r: (int(r.get("seed", 0)), r["run_id"]))
                first = members[0]
                variant = Variant(
                    label=placement.label,
                    model=first["model"],
                    baseline=_is_baseline(first),
                    config={k: v for k, v in first.get("config", {}).items() if k != "seed"},
                    rows=members,
                )
                variant.estimates = {m: _estimate(members, m) for m in ESTIMATED}
                variant.gmacs = gmacs(first["model"], variant.config.get("model", {}).get("args", {}))
                if not variant.config.get("model", {}).get("args"):  # the benchmark runs the official variant only
                    variant.bench_seconds, variant.bench_mode = (bench or {}).get(first["model"], (math.nan, ""))
                variants.append(variant)
            _disambiguate(variants)
            variants.sort(key=lambda v: (v.baseline, v.label))
            protocol_id = protocol_ids.setdefault(canonical(evaluation.protocol), f"P{len(protocol_ids) + 1}")
            table = Table(
                key=family if len(evaluations) == 1 else f"{family}-{n + 1}",
                family=family,
                protocol_id=protocol_id,
                protocol=evaluation.protocol,
                scale_rule=evaluation.scale_rule,
                data=evaluation.data,
                variants=variants,
            )
            paired_statistics(table)
            tables.append(table)
    return tables
