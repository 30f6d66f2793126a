"""Sweep presets: every config composes into the schema; real multiruns with the joblib and submitit_local launchers;
finished runs are skipped; parallel jobs never collide; a failing job leaves the others and the report intact."""

import csv
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from zoo.config import RunConfig, register_schema
from zoo.factory import create_model
from zoo.registry import get_spec, list_models
from zoo.results import run_id
from zoo.run import config_dict

CONF = Path(__file__).resolve().parents[1] / "conf"
SWEEPS = sorted(p.stem for p in (CONF / "sweep").glob("*.yaml"))
ENV = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1", "HYDRA_FULL_ERROR": "0"}
TINY = [
    "train.steps=2",
    "train.batch_size=2",
    "data.eval_count=1",
    "data.eval_height=32",
    "data.eval_width=48",
    "data.patch_size=32",
]


@pytest.fixture
def hydra_conf():
    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


def compose_run(*overrides: str) -> tuple[RunConfig, object]:
    cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    hydra_cfg = cfg.hydra
    with open_dict(cfg):
        cfg.pop("hydra")
    return OmegaConf.to_object(cfg), hydra_cfg


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def expand(value: str, key: str) -> list[str]:
    """Values of one sweeper parameter: a comma list, or glob(*,exclude=...) over a config group."""
    value = value.strip()
    if value.startswith("glob("):
        excluded = value[value.index("exclude=") + len("exclude=") : -1] if "exclude=" in value else ""
        return [o for o in options(key.lstrip("+")) if o not in excluded.split(",")]
    return [v.strip() for v in value.split(",")]


def sweep_jobs(name: str) -> list[list[str]]:
    """The override lists of every job of a sweep preset (seeds collapsed to the first: they do not change validity)."""
    _, hydra_cfg = compose_run(f"sweep={name}")
    params = {k: expand(str(v), k) for k, v in hydra_cfg.sweeper.params.items()}
    params = {k: (v[:1] if k == "seed" else v) for k, v in params.items()}
    combos = itertools.product(*params.values())
    return [[f"sweep={name}", *(f"{k}={v}" for k, v in zip(params, combo))] for combo in combos]


# ----------------------------------------------------------------------------------------------------------------------
# composition


def test_every_model_config_is_registered_and_every_model_has_a_config():
    assert options("model") == list_models()


def test_model_data_train_configs_compose_into_the_schema(hydra_conf):
    for group, choices in (("model", options("model")), ("data", options("data")), ("train", options("train"))):
        for choice in choices:
            cfg, _ = compose_run(f"{group}={choice}")
            assert isinstance(cfg, RunConfig)
    cfg, _ = compose_run("train=budget")
    assert cfg.train.steps > 0 and cfg.train.batch_size > 0 and not cfg.train.progress


@pytest.mark.parametrize("sweep", SWEEPS)
def test_sweep_preset_composes_every_job(hydra_conf, sweep):
    _, hydra_cfg = compose_run(f"sweep={sweep}")
    assert hydra_cfg.mode == RunMode.MULTIRUN  # `zoo run sweep=...` needs no -m
    assert "joblib" in hydra_cfg.launcher._target_ and hydra_cfg.launcher.n_jobs == 2
    jobs = sweep_jobs(sweep)
    models = set()
    for overrides in jobs:
        cfg, _ = compose_run(*overrides)
        assert cfg.train.threads == 1  # 2 jobs × 1 torch thread on the 2 cores
        spec = get_spec(cfg.model.name)
        spec.recipe(**cfg.model.recipe)  # recipe options exist
        if cfg.model.args:
            with torch.device("meta"):
                create_model(cfg.model.name, **cfg.model.args)  # architecture options exist
        family = sweep.removeprefix("ablation_")
        if spec.is_baseline or not sweep.startswith("ablation_"):
            assert cfg.tag == family  # the sweep's own tag
        else:
            assert cfg.tag.startswith(f"{family}/") and cfg.tag != f"{family}/"  # "family/variant": one table
        models.add(cfg.model.name)
    baselines = {m for m in list_models() if get_spec(m).is_baseline}
    assert baselines <= models, f"{sweep} lacks baselines {baselines - models}"  # every table has the baselines
    if sweep in ("smoke", "zoo"):
        assert models == set(list_models())


def test_official_variants_reuse_the_zoo_runs(hydra_conf):
    """The ablations' official variants and their baselines have the zoo sweep's run ids (trained once, tagged twice);
    the other variants do not."""
    budget = ["train=budget", "seed=1"]

    def rid(*overrides):
        return run_id(config_dict(compose_run(*overrides, *budget)[0]))

    shared = {
        "ablation_hdrunet_loss": ("hdrunet_loss_tanh_l1", "hdrunet"),
        "ablation_hdrunet_modules": ("hdrunet_modules_full", "hdrunet"),
        "ablation_twostage_stages": ("twostage_stages_both", "twostage"),
    }
    for sweep, (variant, model) in shared.items():
        zoo_rid = rid("sweep=zoo", f"model={model}")
        assert rid(f"sweep={sweep}", f"+variant={variant}") == zoo_rid
        assert rid(f"sweep={sweep}", "+variant=landis") == rid("sweep=zoo", "model=landis")
        others = [o for o in options("variant") if o.startswith(sweep.removeprefix("ablation_")) and o != variant]
        assert others and all(rid(f"sweep={sweep}", f"+variant={o}") != zoo_rid for o in others)


def test_launchers_for_clusters_compose(hydra_conf):
    _, hydra_cfg = compose_run("sweep=zoo", "hydra/launcher=slurm", "hydra.launcher.partition=gpu")
    assert hydra_cfg.launcher._target_.endswith("SlurmLauncher") and hydra_cfg.launcher.partition == "gpu"
    _, hydra_cfg = compose_run("sweep=zoo", "hydra/launcher=submitit_local")
    assert hydra_cfg.launcher._target_.endswith("LocalLauncher")
    cfg, _ = compose_run("sweep=zoo", "train=budget", "train.threads=8")
    assert cfg.train.steps == compose_run("train=budget")[0].train.steps and cfg.train.threads == 8  # the CLI wins


# ----------------------------------------------------------------------------------------------------------------------
# real multiruns (subprocesses)


def zoo(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zoo.cli", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout
    )


def multirun(tmp: Path, *overrides: str) -> subprocess.CompletedProcess:
    return zoo(
        "run",
        "sweep=smoke",
        *TINY,
        f"results_dir={tmp}/runs",
        f"checkpoint_dir={tmp}/ck",
        f"hydra.sweep.dir={tmp}/sweep",
        *overrides,
        cwd=tmp,
    )


def rows_in(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


def no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_joblib_sweep_runs_in_parallel_skips_finished_runs_and_reports(tmp_path):
    proc = multirun(tmp_path, "model=identity,hdrunet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    rows = rows_in(tmp_path / "runs")
    assert sorted(r["model"] for r in rows.values()) == ["hdrunet", "identity"]
    assert all(r["status"] == "ok" and r["tags"] == ["smoke"] and r["threads"] == 1 for r in rows.values())
    assert all((tmp_path / "runs" / f"{rid}.preview.png").is_file() for rid in rows)
    assert no_temporary_files(tmp_path / "runs")
    before = {p.name: p.read_bytes() for p in (tmp_path / "runs").iterdir()}

    again = multirun(tmp_path, "model=identity,hdrunet")  # the same sweep again: nothing is recomputed
    assert again.returncode == 0 and (again.stdout + again.stderr).count("already finished") == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "runs").iterdir()} == before

    forced = multirun(tmp_path, "model=identity", "force=true")
    assert forced.returncode == 0 and "already finished" not in forced.stdout + forced.stderr
    identity = next(rid for rid, r in rows.items() if r["model"] == "identity")
    assert (tmp_path / "runs" / f"{identity}.json").read_bytes() != before[f"{identity}.json"]  # recomputed

    report = zoo("report", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "report"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "| hdrunet |" in report.stdout and "| identity |" in report.stdout  # the table is printed
    assert (tmp_path / "report" / "plots" / "smoke_visual.png").is_file()  # grid from the runs' previews


def test_parallel_jobs_of_one_run_never_collide(tmp_path):
    """Two jobs that differ only in a non-semantic key share a run id and race for the same row file: one complete
    row results, and no temporary file is left behind."""
    proc = multirun(tmp_path, "model=identity", "train.log_every=1,2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = rows_in(tmp_path / "runs")
    assert len(rows) == 1 and next(iter(rows.values()))["status"] == "ok"
    assert no_temporary_files(tmp_path / "runs")


def test_failing_job_leaves_the_others_and_the_report_intact(tmp_path):
    proc = multirun(tmp_path, "model=hdrunet", "model.recipe.loss=l1,l7")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = rows_in(tmp_path / "runs")
    status = {r["config"]["model"]["recipe"]["loss"]: r["status"] for r in rows.values()}
    assert status == {"l1": "ok", "l7": "failed"}
    report = zoo("report", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--no-plots", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    with (tmp_path / "out" / "failed.csv").open() as handle:
        failed = list(csv.DictReader(handle))
    assert len(failed) == 1 and "l7" in failed[0]["error"]
    with (tmp_path / "out" / "summary.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    assert [r["model"] for r in summary] == ["hdrunet"] and failed[0]["run_id"] not in summary[0]["run_ids"]
    assert "## Failed runs" in report.stdout and "l7" in report.stdout.split("## Failed runs")[1]


def test_submitit_local_launcher(tmp_path):
    proc = multirun(tmp_path, "model=identity,landis", "hydra/launcher=submitit_local")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = rows_in(tmp_path / "runs")
    assert sorted(r["model"] for r in rows.values()) == ["identity", "landis"]
    assert all(r["status"] == "ok" for r in rows.values())
    assert (tmp_path / "sweep" / ".submitit").is_dir()
