"""The report: tables from rows the tests write, bootstrap CIs, protocol separation, failed runs, determinism."""

import csv
import json
import math
import zlib

import numpy as np
import pytest
from conftest import REPO

from zoo import metrics
from zoo.complexity import gmacs
from zoo.preview import highlight_crop, load_preview, preview_path, preview_strip
from zoo.report import SIGNIFICANCE_DB, build_tables, write_report
from zoo.results import write_row
from zoo.stats import bootstrap_ci

HEADLINE = ("psnr_l_ntire", "psnr_mu_ntire", "ssim_mu_ntire", "pu21_psnr_rgb")
TEXT_OUTPUTS = ("summary.csv", "failed.csv", "tables.md", "tables.tex")
N_IMAGES = 6


def make_row(model, seed, pu21, tags=("zoo",), protocol=None, run_id=None, params=1000, spread=1.0, baseline=False):
    """A finished row as zoo.run writes it, with per-image metrics around ``pu21`` (deterministic per model/seed)."""
    rng = np.random.default_rng([seed, sum(map(ord, model)), sum(map(ord, "".join(tags)))])
    images = []
    for i in range(N_IMAGES):
        offset = rng.normal(0, spread)
        images.append(
            {
                "image": f"synthetic-eval-s0-{i:05d}",
                "psnr_l_ntire": 30 + offset,
                "psnr_mu_ntire": 20 + offset,
                "ssim_mu_ntire": 0.8 + offset / 100,
                "pu21_psnr_rgb": pu21 + offset,
                "seconds": 0.01,
            }
        )
    config = {
        "model": {"name": model, "args": {}, "recipe": {}, "weights": None},
        "data": {
            "name": "synthetic",
            "seed": 0,
            "eval_count": N_IMAGES,
            "eval_height": 32,
            "eval_width": 48,
            "patch_size": 32,
        },
        "train": {"steps": 0 if baseline else 10, "batch_size": 2},
        "seed": seed,
    }
    return {
        "run_id": run_id or f"{zlib.crc32(repr((model, seed, tags)).encode()):012x}",
        "model": model,
        "data": "synthetic",
        "seed": seed,
        "tag": tags[0],
        "tags": list(tags),
        "config": config,
        "status": "ok",
        "error": "",
        **{m: float(np.mean([im[m] for im in images])) for m in HEADLINE},
        "n_images": N_IMAGES,
        "params": 0 if baseline else params,
        "steps": 0 if baseline else 10,
        "train_seconds": 0.0 if baseline else 12.0,
        "seconds_per_image": 0.01,
        "scale_rule": "aligned",
        "protocol": protocol or metrics.PROTOCOL,
        "images": images,
        "history": [] if baseline else [{"step": s, "stage": "main", "model/loss": 1.0 / s} for s in (2, 4, 6)],
    }


@pytest.fixture
def runs(tmp_path):
    """Two learned models × 2 seeds, two baselines, one ablation family, one failed run."""
    folder = tmp_path / "runs"
    rows = [make_row("hdrunet", s, 20.0) for s in (0, 1)]
    rows += [make_row("twostage", s, 18.0) for s in (0, 1)]  # within 3.5 dB of the best: n.s.
    rows += [make_row("identity", 0, 14.0, baseline=True), make_row("landis", 0, 12.0, baseline=True)]
    rows[0]["tags"] = ["zoo", "hdrunet_loss/tanh_l1"]  # reached again by the ablation sweep
    rows += [make_row("hdrunet", s, 19.0, tags=("hdrunet_loss/l1",)) for s in (0, 1)]
    rows[-1]["config"]["model"]["recipe"] = rows[-2]["config"]["model"]["recipe"] = {"loss": "l1"}
    failed = {
        "run_id": "f00000000bad",
        "model": "hdrunet",
        "seed": 2,
        "tag": "zoo",
        "tags": ["zoo"],
        "status": "failed",
        "error": "model 'hdrunet': bad argument (nf must be positive)",
        "config": {},
    }
    for row in [*rows, failed]:
        write_row(folder, row)
    return folder, rows


def read_csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_report_is_deterministic_and_complete(runs, tmp_path):
    folder, rows = runs
    write_report(folder, tmp_path / "a", plots=True)
    write_report(folder, tmp_path / "b", plots=True)
    for name in TEXT_OUTPUTS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    plots = tmp_path / "a" / "plots"
    for figure in sorted(plots.iterdir()):
        assert figure.read_bytes() == (tmp_path / "b" / "plots" / figure.name).read_bytes(), figure.name
    for figure in ("metrics", "gmacs", "latency", "training"):
        assert (plots / f"zoo_{figure}.png").stat().st_size > 0 and (plots / f"zoo_{figure}.pdf").stat().st_size > 0
    markdown = (tmp_path / "a" / "tables.md").read_text()
    assert "![zoo metrics](plots/zoo_metrics.png)" in markdown
    assert "no preview image for" in markdown  # the test rows have no previews: the grid says so instead of failing


def test_summary_values_are_the_rows_values(runs, tmp_path):
    folder, rows = runs
    write_report(folder, tmp_path, plots=False)
    summary = {(r["table"], r["label"]): r for r in read_csv(tmp_path / "summary.csv")}
    hdrunet = summary[("zoo", "hdrunet")]
    values = [im["pu21_psnr_rgb"] for r in rows[:2] for im in r["images"]]
    assert float(hdrunet["pu21_psnr_rgb_mean"]) == pytest.approx(np.mean(values), abs=1e-4)
    assert float(hdrunet["pu21_psnr_rgb_ci_low"]) < np.mean(values) < float(hdrunet["pu21_psnr_rgb_ci_high"])
    assert hdrunet["n_seeds"] == "2" and hdrunet["seeds"] == "0 1" and hdrunet["n_images"] == str(N_IMAGES)
    assert float(hdrunet["gmacs_1900x1060"]) == pytest.approx(gmacs("hdrunet"), rel=1e-6)
    assert summary[("zoo", "identity")]["baseline"] == "1" and summary[("zoo", "hdrunet")]["baseline"] == "0"


def test_ablation_tags_and_shared_runs(runs, tmp_path):
    folder, rows = runs
    write_report(folder, tmp_path, plots=False)
    summary = read_csv(tmp_path / "summary.csv")
    ablation = {r["label"]: r for r in summary if r["table"] == "hdrunet_loss"}
    assert set(ablation) == {"hdrunet (tanh_l1)", "hdrunet (l1)"}
    assert ablation["hdrunet (tanh_l1)"]["run_ids"] == rows[0]["run_id"]  # the zoo run, found through its second tag
    assert {r["table"] for r in summary} == {"zoo", "hdrunet_loss"}


def test_significance_against_the_best(runs, tmp_path):
    folder, _ = runs
    write_report(folder, tmp_path, plots=False)
    zoo = {r["label"]: r for r in read_csv(tmp_path / "summary.csv") if r["table"] == "zoo"}
    assert zoo["hdrunet"]["significance_vs_best"] == "best"
    for label, row in zoo.items():
        delta = float(row["pu21_delta_vs_best"])
        expected = "best" if label == "hdrunet" else ("n.s." if -delta < SIGNIFICANCE_DB else "")
        assert row["significance_vs_best"] == expected, label
    assert zoo["twostage"]["significance_vs_best"] == "n.s." and zoo["landis"]["significance_vs_best"] == ""
    # the second twostage line is in the SI-HDR table, which carries the paired statistics
    line = [x for x in (tmp_path / "tables.md").read_text().splitlines() if x.startswith("| twostage |")][-1]
    paired = (float(zoo["twostage"][k]) for k in ("pu21_paired_delta", "pu21_paired_low", "pu21_paired_high"))
    assert "| {:+.2f} [{:+.2f}, {:+.2f}] |".format(*paired) in line and "| < 3.5 dB |" in line


def test_failed_runs_are_listed_never_averaged(runs, tmp_path):
    folder, _ = runs
    write_report(folder, tmp_path, plots=False)
    failed = read_csv(tmp_path / "failed.csv")
    assert [(r["run_id"], r["error"]) for r in failed] == [
        ("f00000000bad", "model 'hdrunet': bad argument (nf must " "be positive)")
    ]
    assert all("f00000000bad" not in r["run_ids"] for r in read_csv(tmp_path / "summary.csv"))
    markdown = (tmp_path / "tables.md").read_text()
    assert "## Failed runs" in markdown and "nf must be positive" in markdown.split("## Failed runs")[1]


def test_protocols_are_never_mixed(tmp_path):
    other = {**metrics.PROTOCOL, "pu21_peak_luminance": 1000.0}
    rows = [make_row("hdrunet", 0, 20.0), make_row("hdrunet", 1, 20.0, protocol=other)]
    tables = build_tables(rows)
    assert len(tables) == 2 and {t.protocol_id for t in tables} == {"P1", "P2"}
    assert [len(t.variants[0].rows) for t in tables] == [1, 1]
    for row in rows:
        write_row(tmp_path / "runs", row)
    write_report(tmp_path / "runs", tmp_path / "out", plots=False)
    markdown = (tmp_path / "out" / "tables.md").read_text()
    assert "Protocol P1:" in markdown and "Protocol P2:" in markdown and "1000.0 cd/m²" in markdown


def test_same_label_different_configs_are_told_apart():
    a, b = make_row("hdrunet", 0, 20.0, run_id="a" * 12), make_row("hdrunet", 0, 21.0, run_id="b" * 12)
    b["config"]["train"]["steps"] = 99
    labels = sorted(v.label for v in build_tables([a, b])[0].variants)
    assert labels == ["hdrunet [train.steps=10]", "hdrunet [train.steps=99]"]


def test_benchmark_latency_is_the_1900x1060_figure_of_the_benchmarks_own_csv(runs, tmp_path):
    """On the CSV benchmarks/speed.py wrote (results/bench/speed.csv): the official variant's seconds at the NTIRE
    frame on `zoo predict`'s path (tiled where its automatic plan tiles), the mode named; n/a for baselines and
    ablation variants (not benchmarked)."""
    import shutil

    from zoo.report import read_bench

    folder, _ = runs
    (tmp_path / "bench").mkdir()
    shutil.copy(REPO / "results" / "bench" / "speed.csv", tmp_path / "bench" / "speed.csv")
    with (tmp_path / "bench" / "speed.csv").open(newline="") as handle:
        produced = [
            r
            for r in csv.DictReader(handle)
            if r["model"] == "hdrunet" and r["size"] == "1900x1060" and r["mode"] == "tiled"
        ]
    bench, _ = read_bench(tmp_path / "bench" / "speed.csv")
    assert bench["hdrunet"] == (float(produced[0]["seconds"]), "tiled")
    write_report(folder, tmp_path, plots=False)
    zoo = {r["label"]: r for r in read_csv(tmp_path / "summary.csv") if r["table"] == "zoo"}
    assert float(zoo["hdrunet"]["seconds_per_image_bench"]) == pytest.approx(float(produced[0]["seconds"]), rel=1e-3)
    assert zoo["hdrunet"]["bench_mode"] == "tiled"
    assert zoo["identity"]["seconds_per_image_bench"] == "" and zoo["identity"]["bench_mode"] == ""


# ----------------------------------------------------------------------------------------------------------------------
# bootstrap


def test_bootstrap_ci_of_normal_samples():
    rng = np.random.default_rng(7)
    true_mean, sigma, n = 5.0, 2.0, 100
    covered, widths = 0, []
    for _ in range(200):  # a 95 % interval should cover the true mean in about 95 % of data sets
        x = rng.normal(true_mean, sigma, n)
        est = bootstrap_ci(x)
        covered += est.low < true_mean < est.high
        widths.append((est.high - est.low) / (2 * 1.959964 * x.std(ddof=1) / math.sqrt(n)))  # vs the analytic width
        assert est.mean == pytest.approx(x.mean()) and est.n == n
    assert 0.90 <= covered / 200 <= 0.99
    assert np.mean(widths) == pytest.approx(1.0, abs=0.05)
    assert bootstrap_ci(x) == est  # fixed generator seed: same values, same interval


def test_bootstrap_two_levels():
    rng = np.random.default_rng(3)
    images = rng.normal(0, 1, 50)
    same = bootstrap_ci(np.stack([images] * 3))  # a deterministic model: seeds add nothing
    alone = bootstrap_ci(images)
    assert same.high - same.low == pytest.approx(alone.high - alone.low, rel=0.15)
    shifted = bootstrap_ci(np.stack([images - 3, images, images + 3]))  # seeds that disagree widen the interval
    assert shifted.high - shifted.low > 2 * (alone.high - alone.low)


def test_bootstrap_excludes_non_finite_values():
    est = bootstrap_ci([[1.0, 2.0, math.inf, 3.0]])
    assert est.mean == pytest.approx(2.0) and est.excluded == 1 and est.n == 3
    assert math.isnan(bootstrap_ci([[math.nan]]).mean)


# ----------------------------------------------------------------------------------------------------------------------
# GMACs and previews


def test_gmacs_counted_from_the_code():
    # docs/models.md: HDRUNet 715 GMACs at 1900×1060 (run on the official code); baselines are element-wise only.
    assert gmacs("hdrunet") == pytest.approx(715.24, abs=0.5)
    assert gmacs("hdrunet", {"use_condition": False, "use_weighting": False}) < gmacs("hdrunet")
    assert gmacs("identity") == 0.0
    assert gmacs("hdrunet", height=2 * 1060) == pytest.approx(2 * gmacs("hdrunet"), rel=0.01)  # fully convolutional


def test_preview_crop_and_round_trip(tmp_path):
    ldr = np.full((40, 60, 3), 0.2, np.float32)
    ldr[25:35, 45:55] = 1.0  # the saturated region
    top, left, h, w = highlight_crop(ldr, size=16)
    assert (h, w) == (16, 16) and top <= 25 and top + h >= 35 and left <= 45 and left + w >= 55  # all of it inside
    assert highlight_crop(ldr[:8, :8], size=16) == (0, 0, 8, 8)
    reference = np.full((40, 60, 3), 0.5, np.float32)
    strip = preview_strip(ldr, reference, reference)
    assert strip.shape == (40, 180, 3) and strip.dtype == np.uint8  # crop 96 > image: the whole image
    row_path = tmp_path / "abc.json"
    import cv2

    cv2.imwrite(str(preview_path(row_path)), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    panels = load_preview(preview_path(row_path))
    assert np.array_equal(panels["prediction"], panels["reference"]) and panels["input"].shape == (40, 60, 3)
    assert np.allclose(panels["input"], ldr, atol=0.5 / 255)


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_report_refuses_a_missing_or_empty_runs_folder_and_touches_nothing(tmp_path, kind):
    import subprocess
    import sys

    out = tmp_path / "results"
    out.mkdir()
    (out / "tables.md").write_text("committed tables\n")
    runs = tmp_path / "typo"
    if kind == "empty":
        runs.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "report", "--runs", str(runs), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"error: --runs {runs}:" in proc.stderr and "nothing written" in proc.stderr
    assert (
        sorted(p.name for p in out.iterdir()) == ["tables.md"]
        and (out / "tables.md").read_text() == "committed tables\n"
    )


def test_paired_difference_and_probability_of_being_best():
    """B is A + 0.5 dB on every image, with images spread by ±6 dB: the unpaired CIs overlap, the paired
    difference excludes 0 and B is best in (nearly) every resample; C, far below, never is."""
    a = make_row("hdrunet", 0, 20.0, spread=0.0)
    spread = np.linspace(-6, 6, N_IMAGES)
    for im, offset in zip(a["images"], spread):
        im["pu21_psnr_rgb"] = 20.0 + offset
    b = json.loads(json.dumps(a))
    b.update(model="twostage", run_id="b" * 12)
    b["config"]["model"]["name"] = "twostage"
    for im in b["images"]:
        im["pu21_psnr_rgb"] += 0.5
    c = json.loads(json.dumps(a))
    c.update(model="landis", run_id="c" * 12)
    c["config"]["model"]["name"] = "landis"
    for im in c["images"]:
        im["pu21_psnr_rgb"] -= 9.0
    (table,) = build_tables([a, b, c])
    estimates = {v.label: v.estimates["pu21_psnr_rgb"] for v in table.variants}
    assert estimates["hdrunet"].high > estimates["twostage"].low  # unpaired intervals overlap
    paired = table.paired["hdrunet"]
    assert paired.mean == pytest.approx(-0.5) and paired.high < 0
    assert table.paired["twostage"].mean == 0.0 and table.best.label == "twostage"
    assert table.p_best["twostage"] > 0.95 and table.p_best["landis"] == 0.0
    assert sum(table.p_best.values()) == pytest.approx(1.0)
