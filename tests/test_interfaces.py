"""What users of timm, BasicSR or Lightning expect: checkpoints that describe themselves, torch.hub, photos that come
out upright, and one clear line for every bad option."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageOps

import zoo
from zoo import io
from zoo.cli import main as zoo_main
from zoo.errors import ZooError
from zoo.photo import ORIENTATION_TAG, read_photo
from zoo.predict import predict_image
from zoo.weights import ZOO_FORMAT, read_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1"}


def zoo_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zoo.cli", *map(str, args)],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "error" in line.lower()]


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------------------------------
# checkpoints that describe themselves


def ablation_checkpoint(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = zoo.create_model("hdrunet", use_condition=False)
    return save_checkpoint(tmp_path / "ablation.pt", model, run_id="abc", config_hash="abc", step=7), model


def test_a_zoo_checkpoint_records_name_arguments_and_version(tmp_path):
    path, _ = ablation_checkpoint(tmp_path)
    payload = read_checkpoint(path)
    assert payload["format"] == ZOO_FORMAT and payload["model"] == "hdrunet"
    assert payload["args"] == {"use_condition": False}
    assert payload["zoo_version"] not in ("", None) and payload["config_hash"] == "abc"


def test_create_model_from_checkpoint_rebuilds_an_ablation_variant(tmp_path):
    path, original = ablation_checkpoint(tmp_path)
    with pytest.raises(ZooError, match="weights do not fit model 'hdrunet'"):  # the default architecture differs
        zoo.load_weights(zoo.create_model("hdrunet"), path)
    rebuilt = zoo.create_model_from_checkpoint(path).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(rebuilt(x), original.eval()(x))


def test_create_model_from_checkpoint_refuses_an_official_layout(tmp_path):
    path = tmp_path / "official.pt"
    torch.save(zoo.create_model("hdrunet").state_dict(), path)
    with pytest.raises(ZooError, match="official.pt: not a zoo checkpoint .*create_model\\(name\\)"):
        zoo.create_model_from_checkpoint(path)


def test_zoo_predict_takes_the_architecture_from_the_checkpoint(tmp_path):
    path, original = ablation_checkpoint(tmp_path)
    assert cv2.imwrite(str(tmp_path / "p.png"), photo(24, 32))
    for extra in ([], ["--model", "hdrunet"]):  # --model is optional with a zoo checkpoint
        out = tmp_path / f"out{len(extra)}"
        code = zoo_main(["predict", str(tmp_path / "p.png"), "-o", str(out), "--weights", str(path), *extra])
        assert code == 0
        written = io.read_exr(out / "p.exr")
        with torch.inference_mode():
            ldr = torch.from_numpy(io.read_ldr(tmp_path / "p.png")).permute(2, 0, 1)[None]
            expected = original.eval()(ldr).clamp_min(0) ** 2.24
        assert np.abs(written - expected[0].permute(1, 2, 0).numpy()).max() < 2e-3 * expected.max().item()


def test_zoo_eval_takes_the_architecture_from_the_checkpoint(tmp_path):
    path, _ = ablation_checkpoint(tmp_path)
    proc = zoo_cli(
        "eval",
        "model=hdrunet",
        f"model.weights={path}",
        "data=synthetic",
        "data.eval_count=1",
        f"results_dir={tmp_path / 'rows'}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row_file,) = (tmp_path / "rows").glob("*.json")
    row = json.loads(row_file.read_text())
    ablation = zoo.create_model("hdrunet", use_condition=False)
    assert row["status"] == "ok" and row["params"] == sum(p.numel() for p in ablation.parameters())


def test_zoo_run_writes_a_self_describing_checkpoint(tmp_path):
    proc = zoo_cli(
        "run",
        "model=hdrunet",
        "model.args.use_condition=false",
        "train=smoke",
        "train.steps=1",
        "train.batch_size=1",
        "data.eval_count=1",
        "data.patch_size=32",
        f"results_dir={tmp_path / 'rows'}",
        f"checkpoint_dir={tmp_path / 'ckpt'}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (weights,) = (tmp_path / "ckpt").glob("*/model.pt")
    payload = read_checkpoint(weights)
    assert payload["args"] == {"use_condition": False} and payload["config_hash"] == weights.parent.name
    assert sum(p.numel() for p in zoo.create_model_from_checkpoint(weights).parameters()) < sum(
        p.numel() for p in zoo.create_model("hdrunet").parameters()
    )


# ----------------------------------------------------------------------------------------------------------------------
# torch.hub


def test_hubconf_has_an_entry_for_every_registered_model():
    spec = importlib.util.spec_from_file_location("hubconf", REPO / "hubconf.py")
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    assert all(callable(getattr(hub, name, None)) for name in zoo.list_models()), zoo.list_models()


@pytest.mark.parametrize("name", ["hdrunet", "twostage", "singlehdr"])
def test_torch_hub_loads_the_shipped_weights_from_a_local_folder(name):
    hub_model = torch.hub.load(str(REPO), name, source="local", pretrained=True)
    shipped = zoo.create_model(name, pretrained=True)
    state, expected = hub_model.state_dict(), shipped.state_dict()
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in state)
    random = torch.hub.load(str(REPO), name, source="local")  # pretrained=False: the paper's initialisation
    drawn = random.state_dict()
    assert any(not torch.equal(drawn[k], expected[k]) for k in expected if expected[k].is_floating_point())


# ----------------------------------------------------------------------------------------------------------------------
# photos


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_does(tmp_path, orientation):
    image = Image.fromarray(photo(5, 7))
    exif = image.getexif()
    exif[ORIENTATION_TAG] = orientation
    image.save(tmp_path / "p.png", exif=exif.tobytes())
    upright = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "p.png")))
    read = read_photo(tmp_path / "p.png")
    assert read.orientation == orientation
    assert np.array_equal(np.round(read.image * 255).astype(np.uint8), upright)


def test_a_phone_photo_with_orientation_6_comes_out_upright(tmp_path):
    image = Image.fromarray(photo(40, 64))  # stored landscape, shown portrait
    exif = image.getexif()
    exif[ORIENTATION_TAG] = 6
    image.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    assert zoo_main(["predict", str(tmp_path / "phone.jpg"), "-o", str(tmp_path / "out"), "--model", "identity"]) == 0
    assert io.read_exr(tmp_path / "out" / "phone.exr").shape == (64, 40, 3)
    assert io.read_ldr(tmp_path / "out" / "phone_preview.png").shape == (64, 40, 3)


def test_16_bit_png_and_tiff_are_scaled_to_unit_range(tmp_path):
    pixels = (np.random.default_rng(0).random((9, 13, 3)) * 65535).astype(np.uint16)
    for suffix in (".png", ".tif"):
        assert cv2.imwrite(str(tmp_path / f"p{suffix}"), pixels[..., ::-1])
        read = read_photo(tmp_path / f"p{suffix}")
        assert read.bit_depth == 16 and np.array_equal(read.image, pixels.astype(np.float32) / 65535)


def test_a_non_srgb_profile_is_a_warning_and_srgb_is_not(tmp_path, caplog):
    for name, profile in (("srgb", ImageCms.createProfile("sRGB")), ("xyz", ImageCms.createProfile("XYZ"))):
        icc = ImageCms.ImageCmsProfile(profile).tobytes()
        Image.fromarray(photo(8, 8)).save(tmp_path / f"{name}.png", icc_profile=icc)
    with caplog.at_level("WARNING", logger="zoo.photo"):
        assert read_photo(tmp_path / "srgb.png").profile.lower().startswith("srgb")
        assert not caplog.records
        read = read_photo(tmp_path / "xyz.png")
    assert read.profile and "srgb" not in read.profile.lower()
    (record,) = caplog.records
    assert "xyz.png" in record.getMessage() and "read as sRGB" in record.getMessage()


def test_avif_photos_are_read_through_pillow(tmp_path):
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec")
    Image.fromarray(np.full((16, 24, 3), 128, np.uint8)).save(tmp_path / "p.avif", quality=100)
    read = read_photo(tmp_path / "p.avif")
    assert read.image.shape == (16, 24, 3) and abs(float(read.image.mean()) - 128 / 255) < 0.02


def test_heic_without_its_decoder_is_one_line_naming_the_extra(tmp_path):
    if importlib.util.find_spec("pillow_heif") is not None:
        pytest.skip("pillow-heif is installed: HEIC decodes")
    (tmp_path / "p.heic").write_bytes(b"\0\0\0\x18ftypheic" + bytes(64))
    with pytest.raises(ZooError, match=r"p\.heic: reading HEIC/HEIF needs the optional extra.*hdr-zoo\[photos\]"):
        read_photo(tmp_path / "p.heic")


def test_decoder_noise_never_reaches_the_terminal(tmp_path, capfd):
    io.write_exr(tmp_path / "t.exr", np.random.default_rng(0).random((64, 64, 3)).astype(np.float32))
    data = (tmp_path / "t.exr").read_bytes()
    (tmp_path / "t.exr").write_bytes(data[: len(data) // 2])
    with pytest.raises(ZooError, match=r"t\.exr: cannot read EXR: corrupt or truncated"):
        io.read_exr(tmp_path / "t.exr")
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""  # OpenEXR prints to the C stdout and stderr without capture


# ----------------------------------------------------------------------------------------------------------------------
# options and commands


@pytest.mark.parametrize(
    "option, says",
    [
        (["--threads", "0"], "--threads 0: expected a positive number of threads"),
        (["--device", "banana"], "--device banana: not a device; expected cpu, cuda or cuda:N"),
        (["--device", "meta"], "--device meta: unsupported device type"),
        (["--memory-budget", "-5"], "--memory-budget -5: expected a positive number of MiB"),
        (["--tile", "1"], "--tile 1: tiles under 32 px"),
        (["--halo", "-1"], "--halo -1: expected a halo of 0 or more pixels"),
    ],
)
def test_zoo_predict_bad_option_is_one_line(tmp_path, capsys, option, says):
    assert cv2.imwrite(str(tmp_path / "p.png"), photo(8, 8))
    code = zoo_main(["predict", str(tmp_path / "p.png"), "-o", str(tmp_path / "out"), "--model", "identity", *option])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and says in err, err
    assert not (tmp_path / "out").exists()


def test_predict_does_not_measure_the_receptive_field_when_the_photo_fits(tmp_path):
    from zoo import tiling

    model = zoo.create_model("hdrunet").eval()
    measured = list(tiling._RECEPTIVE_FIELDS)  # strong references: none of them leaves the cache meanwhile
    predict_image(model, photo(64, 96).astype(np.float32) / 255)
    assert len(tiling._RECEPTIVE_FIELDS) == len(measured)  # no probe on any copy: it costs more than the small image


def test_zoo_version_and_run_help():
    assert zoo_cli("--version").stdout.strip() == f"hdr-zoo {zoo.weights.zoo_version()}"
    text = zoo_cli("run", "--help").stdout
    assert text.startswith("zoo run: train one model") and any(
        l.startswith("model: ") and "hdrunet" in l for l in text.splitlines()
    )
    assert "_schema" not in text and "Powered by Hydra" not in text and "cli is powered" not in text


def test_any_model_argument_can_be_overridden_and_unknown_ones_are_one_line(tmp_path):
    shown = zoo_cli("run", "model=hdrunet", "model.args.use_condition=false", "--cfg", "job")
    assert shown.returncode == 0 and "use_condition: false" in shown.stdout, shown.stderr
    proc = zoo_cli(
        "run",
        "model=hdrunet",
        "model.args.banana=1",
        "train=smoke",
        f"results_dir={tmp_path / 'r'}",
        f"checkpoint_dir={tmp_path / 'c'}",
        f"hydra.run.dir={tmp_path / 'h'}",
    )
    lines = error_lines(proc.stdout + proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1 and "banana" in lines[0], proc.stdout + proc.stderr  # once


def test_a_read_only_hydra_run_dir_and_report_out_are_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    proc = zoo_cli("run", "train=smoke", f"hydra.run.dir={blocker}/run", f"results_dir={tmp_path / 'r'}")
    lines = error_lines(proc.stdout + proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1 and f"hydra.run.dir={blocker}/run" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    proc = zoo_cli("report", "--runs", "results/runs", "--out", blocker)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert error_lines(proc.stderr) == [
        f"error: --out {blocker}: {blocker} exists and is not a folder; expected a " "writable folder"
    ]


def test_zoo_score_on_a_native_ntire_folder_pairs_the_gt_files_and_ignores_inputs_and_previews(tmp_path, capsys):
    rng = np.random.default_rng(0)
    reference, results = tmp_path / "ntire", tmp_path / "results"
    reference.mkdir(), results.mkdir()
    for image_id in ("0001", "0002"):
        hdr = (rng.random((24, 32, 3)) * 3).astype(np.float32)
        io.write_ntire(reference / f"{image_id}_gt.png", hdr)
        for exposure in ("short", "medium", "long"):  # the challenge's 8-bit inputs sit in the same folder
            io.write_png8(reference / f"{image_id}_{exposure}.png", np.clip(hdr / 3, 0, 1))
        io.write_ntire(results / f"{image_id}.png", hdr * 0.9)
        io.write_png8(results / f"{image_id}_preview.png", np.clip(hdr / 3, 0, 1))  # zoo predict's preview
    code = zoo_main(["score", str(reference), str(results), "--json"])
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert code == 0 and sorted(report["per_image"]) == ["0001", "0002"], out.err
    assert report["missing"] == [] and report["extra"] == []


def test_a_tiny_evaluation_image_is_skipped_by_name(tmp_path, caplog):
    from zoo.data import DataConfig, build_dataset

    for name, size in (("big", 32), ("tiny", 8)):
        io.write_exr(tmp_path / f"{name}.exr", np.full((size, size, 3), 0.5, np.float32))
    cfg = DataConfig(
        name="folder", root=str(tmp_path), eval_root=str(tmp_path), eval_count=0, eval_height=None, eval_width=None
    )
    with caplog.at_level("WARNING"):
        dataset = build_dataset(cfg, "eval")
    assert [dataset.describe(i)["id"] for i in range(len(dataset))] == ["big"]
    assert any(
        "tiny.exr: image is 8x8; evaluation images need at least 11x11" in r.getMessage() for r in caplog.records
    )
