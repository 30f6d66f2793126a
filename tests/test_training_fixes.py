"""Training correctness: fresh samples every epoch, BatchNorm statistics that match training, each recipe's official
schedule, the log line without a progress bar, TensorBoard, and refused step/batch values."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch
from conftest import REPO
from torch import nn

import zoo
from zoo.config import RunConfig
from zoo.data import DataConfig, build_dataset
from zoo.errors import ZooError
from zoo.run import schedule
from zoo.train import batch_stream, fit, recalibrate_batchnorm


def _ldr_bytes(batches) -> list[bytes]:
    return [image.numpy().tobytes() for batch in batches for image in batch["ldr"]]


def test_every_epoch_draws_fresh_samples_and_stays_a_function_of_the_step():
    """A pool of 2 samples, batch 2, 6 steps = 6 epochs: without set_epoch every step repeats the same 2 patches."""
    data = build_dataset(DataConfig(train_length=2, patch_size=16), "train")
    samples = _ldr_bytes(batch_stream(data, 2, seed=0, start=0, stop=6))
    assert len(set(samples)) >= 8  # at most 2 distinct per epoch, 6 epochs (indices drawn with replacement)
    tail = _ldr_bytes(batch_stream(data, 2, seed=0, start=3, stop=6))
    assert tail == samples[6:]  # a resumed stream (start=3) sees exactly the uninterrupted stream's batches


def test_epochs_agree_across_worker_processes():
    data = build_dataset(DataConfig(train_length=3, patch_size=16), "train")
    in_process = _ldr_bytes(batch_stream(data, 2, seed=1, start=0, stop=4))
    workers = _ldr_bytes(batch_stream(data, 2, seed=1, start=0, stop=4, num_workers=2))
    assert workers == in_process


class TinyBN(nn.Module):
    """Conv → BatchNorm(momentum as TF's slim 0.999 decay) → conv: eval-mode output depends on the running stats."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8, momentum=0.001)
        self.out = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        return self.out(self.bn(self.conv(x) * 5 + 2).relu())


def test_recalibrated_batchnorm_makes_eval_output_match_training():
    torch.manual_seed(0)
    model = TinyBN()
    data = build_dataset(DataConfig(train_length=16, patch_size=16), "train")
    model.train()
    for batch in batch_stream(data, 4, seed=0, start=0, stop=5):  # "training": 5 updates at TF's momentum
        model(batch["ldr"])
    batch = next(iter(batch_stream(data, 4, seed=0, start=5, stop=6)))
    with torch.no_grad():
        trained = model.train()(batch["ldr"])
        before = model.eval()(batch["ldr"])
    assert (before - trained).abs().max() > 0.1  # the running stats are still near their initial (0, 1)
    layers = recalibrate_batchnorm(
        model, data, batches=1, batch_size=4, seed=0, start_step=5, device=torch.device("cpu")
    )
    with torch.no_grad():
        after = model.eval()(batch["ldr"])
    assert layers == 1 and model.bn.momentum == 0.001  # momentum put back
    assert (after - trained).abs().max() < 1e-3  # unbiased vs biased variance over 4·16·16 values: ~1e-4


def test_singlehdr_run_recalibrates_batchnorm(tmp_path):
    """Through zoo run: the saved SingleHDR weights carry statistics recomputed on training batches, so its
    Linearization-Net's BN no longer holds the initial (0, 1) after a 3-step run."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "zoo.cli",
            "run",
            "model=singlehdr",
            "train.steps=3",
            "train.batch_size=2",
            "train.threads=2",
            "train.progress=false",
            "data.patch_size=32",
            "data.eval_count=1",
            "data.eval_height=32",
            "data.eval_width=32",
            "train.bn_recalibration_batches=2",
            f"results_dir={tmp_path / 'runs'}",
            f"checkpoint_dir={tmp_path / 'ckpt'}",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "recomputed the running statistics of" in proc.stdout + proc.stderr
    (weights,) = (tmp_path / "ckpt").glob("*/model.pt")
    state = torch.load(weights, weights_only=True)["state_dict"]
    means = [v for k, v in state.items() if k.startswith("linearization") and k.endswith("running_mean")]
    assert means and max(float(m.abs().max()) for m in means) > 1e-2


def test_paper_schedule_is_each_recipes_own():
    cfg = RunConfig()
    cfg.train.steps, cfg.train.batch_size = None, None
    assert schedule(cfg, zoo.get_spec("hdrunet").recipe()) == (1_000_000, 16)
    assert schedule(cfg, zoo.get_spec("twostage").recipe()) == (23_597, 8)  # 25 epochs of 7,551 patches, batch 8
    assert schedule(cfg, zoo.get_spec("singlehdr").recipe()) == (1_600_000, 8)
    assert schedule(cfg, zoo.get_spec("identity").recipe()) == (0, 1)
    cfg.train.steps, cfg.train.batch_size = 10, 4
    assert schedule(cfg, zoo.get_spec("twostage").recipe()) == (10, 4)


def test_train_paper_composes_to_the_recipe_schedule():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from zoo.config import register_schema

    register_schema()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = OmegaConf.to_object(compose("config", overrides=["model=twostage", "train=paper"]))
    assert (cfg.train.steps, cfg.train.batch_size) == (None, None)


@pytest.mark.parametrize(
    "key,value,message",
    [("steps", -1, "train.steps: expected >= 0"), ("batch_size", 0, "train.batch_size: expected >= 1")],
)
def test_bad_steps_and_batch_size_are_one_line_errors(key, value, message):
    cfg = RunConfig()
    setattr(cfg.train, key, value)
    with pytest.raises(ZooError, match=message):
        schedule(cfg, zoo.get_spec("hdrunet").recipe())


def test_cli_refuses_negative_steps_without_writing_an_ok_row(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "zoo.cli",
            "run",
            "model=hdrunet",
            "train.steps=-5",
            f"results_dir={tmp_path}",
            f"hydra.run.dir={tmp_path / 'h'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "error: train.steps: expected >= 0 (0 = no training), got -5" in proc.stderr
    assert not [p for p in tmp_path.glob("*.json") if '"status": "ok"' in p.read_text()]


def _tiny_fit(**kwargs):
    torch.manual_seed(0)
    nets = nn.ModuleDict({"model": zoo.create_model("hdrunet", nf=8)})
    data = build_dataset(DataConfig(train_length=8, patch_size=16), "train")
    return fit(
        nets,
        zoo.get_spec("hdrunet").recipe(),
        data,
        total_steps=4,
        batch_size=2,
        seed=0,
        device=torch.device("cpu"),
        **kwargs,
    )


def test_a_log_line_every_log_every_steps_without_the_bar(caplog):
    with caplog.at_level(logging.INFO, logger="zoo.train"):
        _tiny_fit(log_every=2, progress=False)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert len(lines) == 2 and lines[0].startswith("step 2/4 [main] model/tanh_l1=")
    for part in ("model/loss=", "lr=", "s/step", "ETA 0:00:"):
        assert part in lines[1], lines[1]


def test_tensorboard_without_the_package_is_a_one_line_error(tmp_path):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorboard is installed here: test_tensorboard_writes_scalars covers it")
    from zoo.run import scalar_logger

    with pytest.raises(ZooError, match=r"train.tensorboard=true needs the tensorboard package"):
        with scalar_logger(True, tmp_path):
            pass


def test_tensorboard_writes_scalars(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is an optional extra (pip install 'hdr-zoo[tensorboard]')")
    from zoo.run import scalar_logger

    with scalar_logger(True, tmp_path / "tb") as on_log:
        on_log({"step": 1, "stage": "main", "model/loss": 0.5, "lr": 1e-4})
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
