"""The shipped reference weights: offline loading for all three models, their model cards, ``zoo list``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import REPO

import zoo
from zoo import pretrained
from zoo.errors import ZooError

LEARNED = ("hdrunet", "singlehdr", "twostage")


def test_every_learned_model_ships_weights():
    assert pretrained.available() == sorted(LEARNED)
    assert sorted(zoo.list_models(include_baselines=False)) == sorted(LEARNED)


@pytest.mark.parametrize("name", LEARNED)
def test_create_model_pretrained_loads_the_shipped_file_offline(name):
    card = pretrained.card(name)
    path = pretrained.weights_path(name)
    assert card["sha256"] == pretrained.sha256_of(path) and card["bytes"] == path.stat().st_size
    model = zoo.create_model(name, pretrained=True).eval()
    stored = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in model.state_dict().items():
        assert value.dtype == (torch.float32 if value.is_floating_point() else value.dtype)
        torch.testing.assert_close(value, stored[key].to(value.dtype), rtol=0, atol=0)
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (1, 3, 40, 56) and torch.isfinite(out).all()
    first = next(name for name, _ in model.named_parameters())  # trained, not the initialisation
    assert not torch.equal(model.state_dict()[first], zoo.create_model(name).state_dict()[first])


@pytest.mark.parametrize("name", LEARNED)
def test_model_card_states_data_budget_hardware_metrics_and_checksum(name):
    card = pretrained.card(name)
    text = (pretrained.folder() / f"{name}.md").read_text()
    assert card["sha256"] in text and card["licence"] in text
    for dataset in ("real", "synthetic"):
        assert card["metrics"][dataset]["pu21_psnr_rgb"]["n"] == card["evaluation"][dataset]["n_images"] == 8
        for metric in ("pu21_psnr_rgb", "psnr_mu_ntire"):
            ci = card["vs_identity"][dataset][metric]
            assert ci["low"] <= ci["mean"] <= ci["high"]
    assert card["training"]["steps"] > 0 and card["training"]["batch_size"] == 8
    assert f"{card['training']['steps']} steps × batch 8" in text and "Verdict (real scenes)" in text


def test_baselines_accept_pretrained_and_unknown_weights_are_a_clear_error(monkeypatch, tmp_path):
    assert zoo.create_model("identity", pretrained=True) is not None
    monkeypatch.setattr(pretrained, "folder", lambda: tmp_path)
    with pytest.raises(ZooError, match="model 'hdrunet' has no shipped pretrained weights"):
        zoo.create_model("hdrunet", pretrained=True)


def test_zoo_list_shows_which_models_have_weights():
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "list"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line.split()[2] for line in proc.stdout.splitlines()}
    assert {lines[name] for name in LEARNED} == {"pretrained"} and lines["identity"] == "-"
