"""Tables → text: the Markdown report, the LaTeX tables, the summary and failed-runs CSVs, and the console view."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import TYPE_CHECKING, Any

from zoo.report.tables import (
    DIGITS,
    ESTIMATED,
    HEADLINE,
    METRIC_NAMES,
    NTIRE_COLUMNS,
    SIGNIFICANCE_DB,
    SIHDR_COLUMNS,
    Table,
    Variant,
    canonical,
    tags_of,
)
from zoo.stats import Estimate

if TYPE_CHECKING:
    from zoo.report.plots import PlotResult

PLOTS_DIR = "plots"  # beside the tables, linked from the Markdown report


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
    return {"best": "best", "?": "n/a", "n.s.": f"< {SIGNIFICANCE_DB:g} dB"}.get(
        table.significance(variant), f"≥ {SIGNIFICANCE_DB:g} dB"
    )


def _p_best_text(table: Table, variant: Variant) -> str:
    p = table.p_best.get(variant.label)
    return "n/a" if p is None else f"{p:.2f}"


def _eval_size(data: dict[str, Any]) -> str:
    h, w = data.get("eval_height"), data.get("eval_width")
    return f"{h}×{w}" if h and w else "full frames"


def _protocol_summary(protocol: dict[str, Any], scale_rule: str) -> str:
    p = protocol
    parts = [
        f"metrics v{p.get('metrics_version', '?')}",
        f"input {p.get('input_encoding', '?')}",
        f"µ-law µ={p.get('ntire_mu', '?')} with the reference's {p.get('ntire_percentile', '?')}th percentile",
        f"PU21 {p.get('pu21_params', '?')}, reference peak → {p.get('pu21_peak_luminance', '?')} cd/m²",
        "CRF correction " + ("in the *_crf columns" if p.get("crf_correction") else "off"),
        f"scale rule {scale_rule}",
    ]
    return "; ".join(parts)


def data_summary(table: Table) -> str:
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


def table_lines(table: Table) -> tuple[list[str], list[list[str]]]:
    """The NTIRE-protocol table with each variant's cost."""
    header = [
        "model",
        "seeds",
        *(METRIC_NAMES[m] for m in NTIRE_COLUMNS),
        "params",
        "GMACs",
        f"s/image ({_eval_size(table.data)})",
        "s/image 1900×1060 (bench)",
        "train min",
        "steps×batch",
    ]
    lines = []
    for v in table.variants:
        params = v.mean_of("params")
        if v.baseline:
            budget = "—"
        elif v.train:
            budget = f"{v.train.get('steps', '?')}×{v.train.get('batch_size', '?')}"
        else:  # a zoo eval row: the checkpoint's training steps (its batch size is in the model card)
            budget = f"{v.mean_of('steps'):.0f} steps" if math.isfinite(v.mean_of("steps")) else "n/a"
        lines.append(
            [
                v.label,
                str(len(v.rows)),
                *(_ci_text(v.estimates[m], DIGITS[m]) for m in NTIRE_COLUMNS),
                f"{int(params):,}" if math.isfinite(params) else "n/a",
                _num(v.gmacs, 1),
                _num(v.mean_of("seconds_per_image"), 3),
                _bench_text(v),
                _num(v.mean_of("train_seconds") / 60, 1),
                budget,
            ]
        )
    return header, lines


def sihdr_lines(table: Table) -> tuple[list[str], list[list[str]]]:
    """The SI-HDR-protocol table with the paired statistics against the best variant."""
    header = [
        "model",
        "seeds",
        *(METRIC_NAMES[m] for m in SIHDR_COLUMNS),
        "Δ PU21 vs best (paired)",
        "P(best)",
        "SI-HDR 3.5 dB rule",
    ]
    lines = [
        [
            v.label,
            str(len(v.rows)),
            *(_ci_text(v.estimates[m], DIGITS[m]) for m in SIHDR_COLUMNS),
            _delta_text(table, v),
            _p_best_text(table, v),
            _rule_text(table, v),
        ]
        for v in table.variants
    ]
    return header, lines


def _notes(table: Table) -> list[str]:
    notes = []
    for v in table.variants:
        excluded = {m: v.estimates[m].excluded for m in ESTIMATED if v.estimates[m].excluded}
        if excluded:
            notes.append(
                f"{v.label}: non-finite per-image values left out of the mean ({canonical(excluded)}; +inf "
                f"PSNR means an image was reproduced exactly)"
            )
    return notes


def render_markdown(
    tables: list[Table],
    failed: list[dict[str, Any]],
    unreadable: list[str],
    bench_note: str,
    plots: PlotResult | None,
    source: str = "results/runs",
) -> str:
    out = [
        "# Results",
        "",
        f"Generated by `zoo report` from `{source}` (do not edit; `make report` regenerates it). Metrics: mean "
        "over seeds × evaluation images with a two-level bootstrap 95 % CI [low, high]. `Δ PU21 vs best "
        "(paired)`: the per-image PU21-PSNR difference to the table's best variant on the same images (seed means "
        "per image), mean and bootstrap 95 % CI; an interval that excludes 0 is a difference these images "
        "support. `P(best)`: how often the variant has the highest mean PU21-PSNR when the images are resampled. "
        f"`SI-HDR 3.5 dB rule`: the SI-HDR rule of thumb that differences below {SIGNIFICANCE_DB:g} dB PU21-PSNR "
        "are not visible to observers (Hanji et al. 2022), not a statistical test. GMACs: one forward pass at "
        "1900×1060, counted from the code. `s/image`: evaluation "
        "time per image as recorded in the rows (shared CPU, see README)"
        + (f"; bench: {bench_note}" if bench_note else "")
        + ".",
        "",
    ]
    for table in tables:
        header, lines = table_lines(table)
        sihdr_header, sihdr = sihdr_lines(table)
        out += [
            f"## {table.key}",
            "",
            f"Protocol {table.protocol_id}: {_protocol_summary(table.protocol, table.scale_rule)}. "
            f"{data_summary(table)}.",
            "",
            "NTIRE 2021 protocol:",
            "",
            _markdown_table(header, lines),
            "",
            "SI-HDR protocol (absolute luminance, reference peak → "
            f"{table.protocol.get('pu21_peak_luminance', '?')} cd/m², PU21; CRF: after the SI-HDR CRF correction; "
            "n/a: rows made before these metrics existed):",
            "",
            _markdown_table(sihdr_header, sihdr),
            "",
        ]
        notes = _notes(table) + (plots.notes.get(table.key, []) if plots else [])
        out += [f"- {note}" for note in notes] + ([""] if notes else [])
        for name in plots.figures.get(table.key, []) if plots else []:
            out += [f"![{table.key} {name}]({PLOTS_DIR}/{table.key}_{name}.png)", ""]
    out += ["## Failed runs", ""]
    if failed:
        out += [
            _markdown_table(
                ["run id", "model", "tags", "seed", "error"],
                [
                    [
                        r["run_id"],
                        str(r.get("model", "?")),
                        ", ".join(tags_of(r)),
                        str(r.get("seed", "?")),
                        str(r.get("error", "")),
                    ]
                    for r in failed
                ],
            ),
            "",
        ]
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
TEX_REPLACEMENTS = (
    ("\\", r"\textbackslash{}"),
    ("_", r"\_"),
    ("%", r"\%"),
    ("&", r"\&"),
    ("#", r"\#"),
    ("`", ""),
    ("µ", r"$\mu$"),
    ("μ", r"$\mu$"),
    ("×", r"$\times$"),
    ("Δ", r"$\Delta$"),
    ("—", "--"),
    ("→", r"$\to$"),
    ("²", r"$^2$"),
    ("[", "{["),
    ("]", "]}"),
)


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
        caption = (
            f"{table.key}: mean [95 % bootstrap CI] over seeds and evaluation images. Protocol "
            f"{table.protocol_id}: {_protocol_summary(table.protocol, table.scale_rule)}. "
            f"{data_summary(table)}. n.s.: within {SIGNIFICANCE_DB} dB PU21-PSNR of the best."
        )
        out += [
            r"\begin{table}[t]",
            r"\centering",
            r"\small",
            r"\caption{" + _tex_escape(caption) + "}",
            r"\label{tab:" + table.key.replace("_", "-") + "}",
            r"\begin{tabular}{l" + "c" * (len(columns) - 1) + "}",
            r"\toprule",
            " & ".join(_tex_escape(c) for c in columns) + r" \\",
            r"\midrule",
        ]
        for v in table.variants:
            cells = [
                v.label,
                *(_ci_text(v.estimates[m], DIGITS[m]) for m in LATEX_COLUMNS),
                _delta_text(table, v),
                f"{v.mean_of('params') / 1e6:.2f}M" if math.isfinite(v.mean_of("params")) else "n/a",
                _num(v.gmacs, 1),
            ]
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
    header += [
        "pu21_delta_vs_best",
        "significance_vs_best",
        "pu21_paired_delta",
        "pu21_paired_low",
        "pu21_paired_high",
        "p_best",
        "params",
        "gmacs_1900x1060",
        "seconds_per_image_eval",
        "seconds_per_image_bench",
        "bench_mode",
        "train_seconds",
        "steps",
        "batch_size",
        "protocol",
        "run_ids",
    ]
    lines = []
    for table in tables:
        for v in table.variants:
            line: list[Any] = [
                table.key,
                v.label,
                v.model,
                int(v.baseline),
                len(v.rows),
                " ".join(map(str, v.seeds)),
                v.n_images,
            ]
            for m in ESTIMATED:
                e = v.estimates[m]
                line += [_csv_num(e.mean), _csv_num(e.low), _csv_num(e.high)]
            params = v.mean_of("params")
            paired = table.paired.get(v.label)
            line += [
                _csv_num(table.delta(v)),
                table.significance(v),
                *(_csv_num(getattr(paired, k)) if paired else "" for k in ("mean", "low", "high")),
                _csv_num(table.p_best[v.label]) if v.label in table.p_best else "",
                "" if not math.isfinite(params) else int(params),
                _csv_num(v.gmacs, 3),
                _csv_num(v.mean_of("seconds_per_image")),
                _csv_num(v.bench_seconds),
                v.bench_mode,
                _csv_num(v.mean_of("train_seconds"), 1),
                v.train.get("steps", ""),
                v.train.get("batch_size", ""),
                table.protocol_id,
                " ".join(r["run_id"] for r in v.rows),
            ]
            lines.append(line)
    return _csv_text(header, lines)


def render_failed_csv(failed: list[dict[str, Any]]) -> str:
    return _csv_text(
        ["run_id", "model", "tags", "seed", "error"],
        [
            [r["run_id"], r.get("model", ""), " ".join(tags_of(r)), r.get("seed", ""), r.get("error", "")]
            for r in failed
        ],
    )


# ----------------------------------------------------------------------------------------------------------------------
# the report
