"""The committed benchmark CSVs have the columns the current benchmarks write, and record the commit and command that
produced them; the benchmark refuses to write rows with fields it does not declare."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "results" / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


speed = _load("speed")


def expected_columns() -> dict[str, list[str]]:
    """{committed file name: the header the current benchmark writes}."""
    data_speed = _load("data_speed")
    columns = {f"{name}.csv": [*cols, *speed.RUN_FIELDS] for name, cols in speed.COLUMNS.items()}
    columns["data_speed.csv"] = list(data_speed.COLUMNS)
    for script in ("train_speed", "precision"):
        columns |= {f"{name}.csv": [*cols, *speed.RUN_FIELDS] for name, cols in _load(script).COLUMNS.items()}
    return columns


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_every_committed_bench_csv_is_one_the_benchmarks_write():
    committed = sorted(p.name for p in BENCH.glob("*.csv"))
    assert committed, "results/bench holds no CSV"
    unknown = set(committed) - set(expected_columns())
    assert not unknown, f"not written by any benchmark: {unknown}"


@pytest.mark.parametrize("name", sorted(p.name for p in BENCH.glob("*.csv")))
def test_committed_bench_csv_has_the_current_schema_and_its_provenance(name):
    header, rows = _read(BENCH / name)
    assert header == expected_columns()[name], f"{name}: header differs from what the benchmark writes now"
    assert rows, f"{name}: no rows"
    for row in rows:
        assert row["git_commit"] and row["git_commit"] != "unknown", f"{name}: a row without its commit"
        assert row["command"].startswith("python benchmarks/"), f"{name}: a row without the command that made it"
        assert row["measured_utc"], f"{name}: a row without its time"


def test_the_report_reads_columns_the_speed_benchmark_writes():
    from zoo.report.inputs import BENCH_COLUMNS

    assert set(BENCH_COLUMNS) <= set(speed.COLUMNS["speed"])


def test_rows_with_an_undeclared_field_are_not_written(tmp_path):
    tables = {"speed_goals": [{"goal": "g", "measured": "m", "met": True, "typo": 1}]}
    with pytest.raises(SystemExit, match="speed_goals: typo"):
        speed.write_tables(tmp_path, "", tables, {"threads": 2})
    assert not list(tmp_path.glob("*.csv"))
    assert (tmp_path / "bench_rows.json").is_file()  # the measurements are kept


def test_written_tables_have_the_declared_header(tmp_path):
    tables = {"speed_goals": [{"goal": "g", "measured": "m", "met": True}], "speed": []}
    speed.write_tables(tmp_path, "", tables, {"threads": 2, "git_commit": "abc"})
    header, rows = _read(tmp_path / "speed_goals.csv")
    assert header == [*speed.COLUMNS["speed_goals"], *speed.RUN_FIELDS]
    assert rows == [{**{k: "" for k in header}, "goal": "g", "measured": "m", "met": "True", "threads": "2",
                     "git_commit": "abc"}]  # fmt: skip
    assert not (tmp_path / "speed.csv").exists()  # an empty table writes no file


def test_another_process_counts_as_load():
    """A busy process that is not one of the benchmark's finished workers shows up in ``others_cpu_pct``."""
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"])
    try:
        meter = speed.OtherProcesses()
        time.sleep(1.0)
        share = meter.percent()
    finally:
        busy.wait()
    assert share >= 40.0  # about 100 % of a core; less only if the machine could not run it


def test_training_benchmark_writes_its_declared_tables(tmp_path):
    """The training-throughput benchmark end to end at a toy size (figures meaningless, only the tables checked)."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "train_speed.py"),
            "--models",
            "hdrunet",
            "--batch",
            "2",
            "--patch",
            "32",
            "--steps",
            "1",
            "--repeats",
            "2",
            "--threads",
            "1",
            "--out-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, rows = _read(tmp_path / "train_speed.csv")
    assert header == expected_columns()["train_speed.csv"]
    variants = [r["variant"] for r in rows]
    assert variants == ["reference", "zoo", "zoo_fixed_batch", "zoo_channels_last", "zoo_worker"]
    assert all(float(r["min_s"]) <= float(r["median_s"]) <= float(r["max_s"]) for r in rows)
    assert all(r["rounds"] == "2" and r["command"].startswith("python benchmarks/train_speed.py") for r in rows)
    for row in rows:  # each round's seconds are in the row, and the median is theirs
        rounds = sorted(float(t) for t in row["round_s"].split(";"))
        assert len(rounds) == 2 and float(row["median_s"]) == pytest.approx(sum(rounds) / 2, rel=1e-3)
    _, (goal,) = _read(tmp_path / "train_speed_goals.csv")
    assert goal["met"] in ("True", "False") and "hdrunet training step" in goal["goal"]


def _worker_result(seconds: float, peak_mb: float, probe_s: float) -> dict:
    return {
        "status": "ok",
        "seconds": seconds,
        "cpu_s": 2 * seconds,
        "probe_s": probe_s,
        "base_rss": 400 * 2**20,
        "peak_rss": peak_mb * 2**20,
        "load_before": 1.0,
        "load_after": 1.1,
        "tiles": "476x356 cores, halo 20",
        "windows": 12,
        "window_px": 204336,
        "computed_px": 2_000_000,
        "context_px": 1_000_000,
    }


def test_a_latency_row_is_the_median_of_its_rounds_with_their_spread():
    profile = {"flops": (1e6, 0.0), "window_flops_per_px": 1e6, "context_flops_per_px": 5e5}
    row = {"model": "m", "size": "1900x1060", "mode": "tiled"}
    runs = [_worker_result(12.0, 1300, 9.0), _worker_result(10.0, 1350, 0.5), _worker_result(30.0, 1200, 0.7)]
    summary = speed.summarise(runs, profile, row, gemm=200.0)
    spread = (summary["seconds"], summary["seconds_min"], summary["seconds_max"], summary["runs"])
    assert spread == (12.0, 10.0, 30.0, 3)
    assert summary["peak_rss_mb"] == 1350  # the largest of the rounds
    assert summary["probe_s"] == 9.0 and summary["probe_cached_s"] == 0.6  # round 1 probes; later rounds: the cache
    # computed FLOPs: every window's (2e6 px × 1e6) and the global context pass's (1e6 px × 5e5)
    assert summary["computed_gflop"] == pytest.approx(2.5e3)
    assert summary["gflops"] == pytest.approx(2.5e12 / 12.0 / 1e9) and summary["pct_gemm"] == pytest.approx(
        100 * 2.5e12 / 12.0 / 1e9 / 200.0
    )
    failed = speed.summarise([runs[0], {"status": "timeout", "note": "killed after 300 s"}], profile, row, 200.0)
    assert failed["status"] == "timeout" and failed["note"] == "killed after 300 s"


def test_training_rounds_rotate_the_order_and_goals_pair_rounds():
    """Round r of train_speed starts r variants later (no variant always follows the same one), and a goal's ratio is
    the median of same-round ratios, not a ratio of medians taken in different rounds."""
    train_speed = _load("train_speed")
    order: list[str] = []
    variants = [train_speed.Variant(name, "", 1.0, lambda name=name: order.append(name)) for name in "abc"]
    train_speed.timed_rounds(variants, steps=1, repeats=3)
    assert "".join(order) == "abc" + "abc" + "bca" + "cab"  # the warm-up, then three rotated rounds
    assert all(len(v.rounds) == 3 for v in variants)
    slow, fast = {"round_s": "2;4;9"}, {"round_s": "1;4;3"}  # per-round ratios 2, 1, 3; medians' ratio 4/3
    assert train_speed.paired_ratio(slow, fast) == (2.0, 1.0, 3.0)


def test_the_hand_written_official_twostage_step_is_the_zoos_arithmetic():
    """train_speed's like-for-like pair: one hand-written official step and one zoo step at the same recipe options,
    from the same weights on the same batch, leave the generator with the same parameters (the discriminator's noisy
    labels come from different generators, so it is not compared)."""
    import copy

    import torch

    import zoo
    from zoo.models.twostage.net import Discriminator
    from zoo.train import build_stage_optim, train_step

    train_speed = _load("train_speed")
    torch.manual_seed(0)
    model, disc = zoo.create_model("twostage").train(), Discriminator().train()
    initial = copy.deepcopy(model)
    nets = torch.nn.ModuleDict({"model": copy.deepcopy(model), "discriminator": copy.deepcopy(disc)})
    batch = next(iter(train_speed.speed_batches(32, 2)))
    recipe = zoo.get_spec("twostage").recipe(**train_speed.OFFICIAL_RECIPE_OPTIONS["twostage"])
    stage = recipe.stages[0]
    train_step(nets, recipe, stage, build_stage_optim(nets, stage, n_steps=10, lr_scale=1.0), batch)
    train_speed.official_twostage_step(model, disc, batch)()
    pairs = zip(model.named_parameters(), nets["model"].named_parameters(), initial.parameters())
    for (name, by_hand), (_, by_zoo), before in pairs:
        assert not torch.equal(by_zoo, before), name  # the step moved every generator parameter
        assert torch.allclose(by_hand, by_zoo, rtol=0, atol=1e-6), name


def test_an_untiled_bf16_row_counts_the_untiled_flops():
    """tiled_bf16 runs untiled where the frame fits one window (no computed_px): its FLOPs are the untiled pass's."""
    profile = {"flops": (1e6, 0.0), "window_flops_per_px": 2e6, "context_flops_per_px": 5e5}
    run = {**_worker_result(10.0, 900, 0.1), "tiles": "", "windows": 1, "computed_px": 0, "context_px": 0}
    summary = speed.summarise([run], profile, {"model": "m", "size": "1900x1060", "mode": "tiled_bf16"}, gemm=200.0)
    assert summary["computed_gflop"] == pytest.approx(1e6 * 1900 * 1060 / 1e9)


def test_the_bf16_path_has_its_own_speed_goal_beside_the_float32_one():
    def row(mode: str, seconds: float) -> dict:
        return {"model": "m", "size": "1900x1060", "mode": mode, "status": "ok", "seconds": seconds,
                "probe_cached_s": 0.5, "peak_rss_mb": 1000.0, "useful_gflop": 1000.0, "gflops": 50.0,
                "pct_gemm": 50.0}  # fmt: skip

    goals = speed.goal_rows([row("reference", 60.0), row("tiled", 23.5), row("tiled_bf16", 9.5)], gemm=100.0)
    by_goal = {g["goal"]: g for g in goals}
    float32 = by_goal["m 1900x1060: zoo path >= 3x faster than the reference path"]
    bf16 = by_goal["m 1900x1060 with --precision bfloat16: zoo path >= 3x faster than the reference path"]
    assert (float32["met"], bf16["met"]) == (False, True)
    assert bf16["measured"].startswith("6.00x (10.0 s with 0.50 s of cached probes, reference 60.0 s")


def test_precision_benchmark_writes_its_declared_table(tmp_path):
    """The quality-by-precision benchmark end to end on two real scenes (needs the shipped HDRUNet weights)."""
    import zoo

    if "hdrunet" not in zoo.pretrained.available():
        pytest.skip("no shipped hdrunet weights")
    command = [sys.executable, str(ROOT / "benchmarks" / "precision.py"), "--models", "hdrunet", "--images", "2"]
    proc = subprocess.run(
        [*command, "--threads", "1", "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, rows = _read(tmp_path / "precision.csv")
    assert header == expected_columns()["precision.csv"]
    assert [(r["precision"], r["images"]) for r in rows] == [("float32", "2"), ("bfloat16", "2")]
    float32, bf16 = rows
    assert float(float32["pu21_delta"]) == 0.0 and float(bf16["pu21_delta"]) != 0.0  # bf16 rounds differently
    assert abs(float(bf16["pu21_delta"])) < 0.1  # and HDRUNet keeps its quality in bf16
    assert float(bf16["pu21_delta_worst"]) <= float(bf16["pu21_delta"])


def test_the_hand_written_official_singlehdr_stage_is_the_zoos_arithmetic():
    """train_speed's SingleHDR pair: the official Linearization-Net step by hand (BatchNorm in training mode, its
    loss, a bare Adam) and the zoo's train_step on that stage, from the same weights on the same batch, leave the
    model with the same parameters; only the Linearization-Net's moved."""
    import copy

    import torch

    import zoo
    from zoo.train import build_stage_optim, set_train_mode, train_step

    train_speed = _load("train_speed")
    torch.manual_seed(0)
    model = zoo.create_model("singlehdr")
    initial = copy.deepcopy(model)
    nets = torch.nn.ModuleDict({"model": copy.deepcopy(model)})
    batch = next(iter(train_speed.speed_batches(32, 2)))
    recipe = zoo.get_spec("singlehdr").recipe()
    by_hand = train_speed.official_singlehdr_variants(batch, model)
    assert [v.stage for v in by_hand] == [s.name for s in recipe.stages]
    stage = recipe.stages[1]
    assert stage.name == "linearization" and by_hand[1].stage == stage.name
    set_train_mode(nets, stage)
    train_step(nets, recipe, stage, build_stage_optim(nets, stage, n_steps=10, lr_scale=1.0), batch)
    by_hand[1].step()
    pairs = zip(model.named_parameters(), nets["model"].named_parameters(), initial.parameters())
    for (name, hand), (_, ours), before in pairs:
        assert torch.allclose(hand, ours, rtol=0, atol=1e-6), name
        assert torch.equal(ours, before) != name.startswith("linearization."), name  # the stage's net alone moved


def test_precision_benchmark_refuses_a_negative_image_count(tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "precision.py"), "--images", "-1", "--out-dir", str(tmp_path)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].endswith(
        "--images -1: expected 0 (all) or a positive count"
    )
    assert not list(tmp_path.iterdir())
