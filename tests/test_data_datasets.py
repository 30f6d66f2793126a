"""Datasets (zoo.data.build_dataset): the sample contract, frozen eval splits, real EXR/HDR/NTIRE files, bad input."""

import json
import logging
import re

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from zoo import io
from zoo.data import CameraConfig, DataConfig, build_dataset, scenes
from zoo.data.common import choose, read_id_list, sample_rng
from zoo.errors import ZooError

CAMERA_KEYS = {"ldr", "target", "linear", "linear_noisy", "linear_clipped", "ldr_unquantized", "inv_crf"}


def hdr_scene(index: int, height: int = 48, width: int = 72) -> np.ndarray:
    return scenes.render(scenes.draw_scene(sample_rng("test-files", index), width / height), height, width)


def check_sample(sample: dict, height: int, width: int, keys: set) -> None:
    assert set(sample) == keys
    for key, value in sample.items():
        assert value.dtype == torch.float32 and torch.isfinite(value).all(), key
        assert value.shape == ((1024,) if key == "inv_crf" else (3, height, width)), key
    ldr = sample["ldr"]
    assert ldr.min() >= 0 and ldr.max() <= 1 and torch.equal(torch.round(ldr * 255), ldr * 255)
    assert sample["target"].min() >= 0


def test_synthetic_training_samples_follow_the_contract():
    data = build_dataset(DataConfig(patch_size=48, train_length=10), "train")
    assert len(data) == 10 and set(data.keys) == CAMERA_KEYS
    for i in range(3):
        check_sample(data[i], 48, 48, CAMERA_KEYS)
    batch = next(iter(DataLoader(data, batch_size=4)))
    assert batch["ldr"].shape == (4, 3, 48, 48) and batch["inv_crf"].shape == (4, 1024)
    assert (batch["target"] > 1).any()  # light sources above the clipping level
    with pytest.raises(IndexError):
        data[10]


def test_synthetic_eval_split_is_frozen_and_described():
    small = build_dataset(DataConfig(eval_count=2, eval_height=40, eval_width=56), "eval")
    large = build_dataset(DataConfig(eval_count=3, eval_height=40, eval_width=56), "eval")
    assert len(small) == 2 and len(large) == 3
    check_sample(small[1], 40, 56, CAMERA_KEYS)
    for key, value in small[1].items():  # item i does not depend on how many items the split has
        assert torch.equal(value, large[1][key]), key
    record = small.describe(1)
    json.dumps(record)
    for key in (
        "id",
        "seed",
        "clip_fraction",
        "exposure",
        "signal_noise",
        "read_noise",
        "curve",
        "curve_family",
        "jpeg_quality",
        "pipeline_version",
    ):
        assert key in record, key
    assert record["id"] != small.describe(0)["id"] and record["jpeg_quality"] == 0
    resized = build_dataset(DataConfig(eval_count=2, eval_height=48, eval_width=56), "eval")
    assert resized.describe(1)["id"] != record["id"]


def test_folder_reads_real_exr_and_hdr_files(tmp_path):
    images = {"a": hdr_scene(0), "b": hdr_scene(1), "sub/c": hdr_scene(2)}
    (tmp_path / "sub").mkdir()
    io.write_exr(tmp_path / "a.exr", images["a"])
    io.write_hdr(tmp_path / "b.hdr", images["b"])
    io.write_exr(tmp_path / "sub" / "c.exr", images["sub/c"], half=False)
    (tmp_path / "notes.txt").write_text("not an image")
    cfg = DataConfig(
        name="folder",
        root=str(tmp_path),
        eval_count=0,
        eval_height=None,
        eval_width=None,
        patch_size=32,
        train_length=6,
        camera=CameraConfig(eval_noise=False),
    )
    evaluation = build_dataset(cfg, "eval")
    assert evaluation.ids == ["a", "b", "sub/c"] and len(evaluation) == 3
    for i, item in enumerate(evaluation.ids):
        arrays, record = evaluation.sample(i)
        assert record["file"].endswith({"a": "a.exr", "b": "b.hdr", "sub/c": "c.exr"}[item])
        on_disk = io.read_hdr_image(record["file"])
        # the clean linear sample is the file's radiance times the recorded exposure
        np.testing.assert_allclose(arrays["linear"], on_disk * np.float32(record["exposure"]), rtol=1e-6)
        rel = np.abs(on_disk - images[item]) / (images[item] + 1e-3)
        assert np.median(rel) < 0.01  # half-float / RGBE precision
        check_sample(evaluation[i], 48, 72, CAMERA_KEYS)
    training = build_dataset(cfg, "train")
    check_sample(training[0], 32, 32, CAMERA_KEYS)
    assert training.describe(4)["id"] in evaluation.ids
    cropped = build_dataset(
        DataConfig(name="folder", root=str(tmp_path), eval_count=2, eval_height=16, eval_width=24), "eval"
    )
    assert len(cropped) == 2 and cropped[0]["ldr"].shape == (3, 16, 24)
    assert cropped.describe(0)["crop"] == [16, 24, 16, 24]
    held = set(cropped.ids)
    assert held.isdisjoint(build_dataset(DataConfig(name="folder", root=str(tmp_path), eval_count=2), "train").ids)


def write_exr_raw(path, pixels: np.ndarray) -> None:
    """An EXR holding whatever values (zoo.io.write_exr refuses NaN/inf, as it should)."""
    import OpenEXR

    with OpenEXR.File(
        {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
        {"RGB": np.ascontiguousarray(pixels, dtype=np.float32)},
    ) as f:
        f.write(str(path))


@pytest.mark.parametrize(
    ("value", "policy", "message"),
    [(np.nan, "clamp", "NaN or inf"), (np.inf, "clamp", "NaN or inf"), (-2.0, "refuse", "1 negative values")],
)
def test_folder_skips_a_file_with_bad_values_naming_it(tmp_path, caplog, value, policy, message):
    """A bad file is reported on one line naming it and skipped; when no file is left, a one-line error."""
    image = hdr_scene(3, 16, 16)
    image[4, 5, 1] = value
    write_exr_raw(tmp_path / "bad.exr", image)
    write_exr_raw(tmp_path / "good.exr", hdr_scene(4, 16, 16))
    cfg = DataConfig(name="folder", root=str(tmp_path), eval_count=0, negative_values=policy)
    with caplog.at_level(logging.WARNING, logger="zoo.data.folder"):
        data = build_dataset(cfg, "eval")
    assert data.ids == ["good"]
    (line,) = [r.getMessage() for r in caplog.records]
    assert re.search(f"bad.exr: .*{message}", line) and "\n" not in line
    (tmp_path / "good.exr").unlink()
    with pytest.raises(ZooError, match="none of the 1 eval images could be read") as info:
        build_dataset(cfg, "eval")
    assert "\n" not in str(info.value)


def test_folder_clamps_negative_values_by_default_and_counts_them(tmp_path):
    image = hdr_scene(3, 16, 16)
    image[4, 5, 1] = image[0, 0, 0] = -2.0
    write_exr_raw(tmp_path / "ringing.exr", image)
    data = build_dataset(
        DataConfig(name="folder", root=str(tmp_path), eval_count=0, eval_height=None, eval_width=None), "eval"
    )
    sample, record = data.sample(0)
    assert record["negative_values"] == 2 and (sample["target"] >= 0).all()


def test_folder_fill_replaces_ringing_pixels_by_their_neighbours(tmp_path):
    """negative_values=fill: a pixel with any negative channel takes the mean of its valid 3x3 neighbours in every
    channel (the file defines no radiance there); other pixels are untouched; the count is still recorded."""
    image = np.full((16, 16, 3), 2.0, dtype=np.float32)
    image[:, 8:] = 4.0
    image[5, 7, 1] = -3.0  # one negative channel next to the 2|4 edge
    write_exr_raw(tmp_path / "ringing.exr", image)
    cfg = DataConfig(name="folder", root=str(tmp_path), eval_count=0, eval_height=None, eval_width=None)
    clamped = io.read_hdr_counted(tmp_path / "ringing.exr", "clamp")[0]
    filled, count = io.read_hdr_counted(tmp_path / "ringing.exr", "fill")
    assert count == 1 and clamped[5, 7].tolist() == [2.0, 0.0, 2.0]
    np.testing.assert_allclose(filled[5, 7], [22 / 8] * 3, rtol=1e-6)  # 8 neighbours: 3x2 + 2x2 + 3x4
    keep = np.ones((16, 16), bool)
    keep[5, 7] = False
    assert (filled[keep] == image[keep]).all()
    data = build_dataset(DataConfig(**{**cfg.__dict__, "negative_values": "fill"}), "eval")
    assert data.describe(0)["negative_values"] == 1 and data.describe(0)["negative_policy"] == "fill"


def test_fill_invalid_pixels_grows_into_wide_holes():
    image = np.arange(8 * 8 * 3, dtype=np.float32).reshape(8, 8, 3)
    invalid = np.zeros((8, 8), bool)
    invalid[2:7, 1:6] = True  # a 5x5 hole: the centre is filled on the third pass
    filled = io.fill_invalid_pixels(image, invalid)
    assert np.isfinite(filled).all() and (filled[~invalid] == image[~invalid]).all()
    assert image[~invalid].min() <= filled[invalid].min() and filled[invalid].max() <= image[~invalid].max()
    assert (io.fill_invalid_pixels(image, np.ones((8, 8), bool)) == 0).all()


def test_folder_bad_files_and_folders_fail_with_one_line(tmp_path):
    (tmp_path / "broken.exr").write_bytes(b"\x76\x2f\x31\x01" + b"\x00" * 50)
    with pytest.raises(ZooError, match="none of the 1 eval images could be read"):
        build_dataset(DataConfig(name="folder", root=str(tmp_path), eval_count=0), "eval")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ZooError, match="empty: no .exr or .hdr files"):
        build_dataset(DataConfig(name="folder", root=str(empty)), "train")
    with pytest.raises(ZooError, match="data.root: folder .*nowhere does not exist"):
        build_dataset(DataConfig(name="folder", root=str(tmp_path / "nowhere")), "train")
    with pytest.raises(ZooError, match="data.root"):
        build_dataset(DataConfig(name="folder", root=None), "eval")


def write_ntire_folder(root, ids=("0000", "0001", "0002"), height=40, width=56) -> dict:
    frames = {}
    for i, item in enumerate(ids):
        gt = (np.random.default_rng(i).uniform(0, 2.5, (height, width, 3))).astype(np.float32)
        io.write_ntire(root / f"{item}_gt.png", gt)
        io.write_png8(root / f"{item}_medium.png", np.clip(gt, 0, 1))
        frames[item] = gt
    return frames


def test_ntire_pairs_frames_by_id(tmp_path):
    frames = write_ntire_folder(tmp_path)
    (tmp_path / "0001_short.png").write_bytes(b"ignored")  # multi-frame files are ignored
    split = tmp_path / "valid.txt"
    split.write_bytes(b"0002\r\n\r\n")  # CRLF like HDRUNet's random_valid.txt
    cfg = DataConfig(
        name="ntire2021",
        root=str(tmp_path),
        split_file=str(split),
        eval_height=None,
        eval_width=None,
        patch_size=32,
        train_length=5,
    )
    evaluation = build_dataset(cfg, "eval")
    assert evaluation.ids == ["0002"] and set(evaluation.keys) == {"ldr", "target"}
    sample = evaluation[0]
    check_sample(sample, 40, 56, {"ldr", "target"})
    expected = io.read_ntire(tmp_path / "0002_gt.png")
    np.testing.assert_array_equal(sample["target"].permute(1, 2, 0).numpy(), expected)
    assert np.abs(expected - frames["0002"]).max() <= 0.5 * frames["0002"].max() / 65535 + 1e-6
    np.testing.assert_array_equal(sample["ldr"].permute(1, 2, 0).numpy(), io.read_ldr(tmp_path / "0002_medium.png"))
    training = build_dataset(cfg, "train")
    assert training.ids == ["0000", "0001"]
    check_sample(training[3], 32, 32, {"ldr", "target"})
    record = training.describe(3)
    top, left, h, w = record["crop"]
    unaugmented = build_dataset(DataConfig(**{**cfg.__dict__, "camera": CameraConfig(augment=False)}), "train")
    patch = unaugmented[3]["target"].permute(1, 2, 0).numpy()
    source = io.read_ntire(tmp_path / f"{record['id']}_gt.png")
    np.testing.assert_array_equal(patch, source[top : top + h, left : left + w])
    centre = build_dataset(
        DataConfig(name="ntire2021", root=str(tmp_path), eval_count=0, eval_height=20, eval_width=30), "eval"
    )
    assert len(centre) == 3 and centre[0]["ldr"].shape == (3, 20, 30) and centre.describe(0)["crop"] == [10, 13, 20, 30]


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("0001_alignratio.npy", r"0001_gt.png: no matching 0001_alignratio.npy"),
        ("0001_medium.png", r"0001_gt.png: no matching 0001_medium.png"),
        ("0001_gt.png", r"0001_medium.png: no matching 0001_gt.png"),
    ],
)
def test_ntire_unpaired_files_fail_naming_the_file(tmp_path, remove, message):
    write_ntire_folder(tmp_path, height=36, width=36)
    (tmp_path / remove).unlink()
    with pytest.raises(ZooError, match=message) as info:
        build_dataset(DataConfig(name="ntire2021", root=str(tmp_path)), "train")
    assert "\n" not in str(info.value)


def test_ntire_other_bad_inputs(tmp_path):
    write_ntire_folder(tmp_path, height=36, width=36)
    split = tmp_path / "valid.txt"
    split.write_text("0001\n0099\n")
    with pytest.raises(ZooError, match="valid.txt: ID '0099' has no image"):
        build_dataset(DataConfig(name="ntire2021", root=str(tmp_path), split_file=str(split)), "eval")
    io.write_png8(tmp_path / "0002_medium.png", np.zeros((30, 36, 3), np.float32))
    data = build_dataset(DataConfig(name="ntire2021", root=str(tmp_path), eval_count=0), "eval")
    with pytest.raises(ZooError, match="0002_gt.png: size 36x36 differs from 0002_medium.png"):
        data[2]
    with pytest.raises(ZooError, match="smaller than data.patch_size 64"):
        build_dataset(DataConfig(name="ntire2021", root=str(tmp_path), patch_size=64), "train")[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ZooError, match="empty: no NTIRE files"):
        build_dataset(DataConfig(name="ntire2021", root=str(empty)), "train")


def test_hdrunet_validation_list_parses(reference_data):
    path = reference_data / "HDRUNet" / "random_valid.txt"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    ids = read_id_list(path)
    assert len(ids) == 78 == len(set(ids)) and all(len(i) == 4 and i.isdigit() for i in ids)


def test_config_is_a_hydra_structured_node_and_bad_values_are_refused():
    schema = OmegaConf.structured(DataConfig)
    merged = OmegaConf.merge(schema, OmegaConf.create({"name": "folder", "root": "/x", "camera": {"jpeg": False}}))
    cfg = OmegaConf.to_object(merged)
    assert isinstance(cfg, DataConfig) and isinstance(cfg.camera, CameraConfig) and cfg.camera.jpeg is False
    with pytest.raises(Exception, match="nonsense"):
        OmegaConf.merge(schema, OmegaConf.create({"nonsense": 1}))
    with pytest.raises(ZooError, match="data.name: unknown dataset 'imagenet'"):
        build_dataset(DataConfig(name="imagenet"), "train")
    with pytest.raises(ZooError, match="data split 'test'"):
        build_dataset(DataConfig(), "test")
    with pytest.raises(ZooError, match="data.patch_size"):
        build_dataset(DataConfig(patch_size=0), "train")
    with pytest.raises(ZooError, match="data.camera.response"):
        build_dataset(DataConfig(camera=CameraConfig(response="dorf")), "train")
    with pytest.raises(ZooError, match="data.eval_count"):
        build_dataset(DataConfig(eval_count=0), "eval")


def test_held_out_choice_is_seeded_and_stable_when_images_are_added():
    ids = [f"img{i:02d}" for i in range(20)]
    held = choose(ids, 5, 0, "folder")
    assert len(held) == 5 and held == sorted(held) and held == choose(ids, 5, 0, "folder")
    assert held != choose(ids, 5, 1, "folder")
    grown = choose(sorted(ids + [f"new{i}" for i in range(5)]), 5, 0, "folder")
    assert all(item in held or item.startswith("new") for item in grown)
    assert choose(ids, 0, 0, "folder") == ids
