"""Real HDR files as users have them: the shipped CC0 scenes and their split, negative values, RGBA EXRs,
unreadable files in a folder, and the synthetic + real mix."""

from __future__ import annotations

import logging

import numpy as np
import OpenEXR
import pytest

from zoo import io
from zoo.data import DataConfig, build_dataset
from zoo.data.real import EVAL_SCENES, SCENES, TRAIN_SCENES, scenes_dir, split_file
from zoo.errors import ZooError


def test_shipped_scenes_and_their_fixed_split():
    assert sorted(p.stem for p in scenes_dir().glob("*.exr")) == list(SCENES) and len(SCENES) == 17
    assert (scenes_dir() / "LICENSE.txt").is_file() and "CC0" in (scenes_dir() / "LICENSE.txt").read_text()
    assert split_file().read_text().split() == list(EVAL_SCENES)
    assert set(EVAL_SCENES).isdisjoint(TRAIN_SCENES) and set(EVAL_SCENES) | set(TRAIN_SCENES) == set(SCENES)
    train = build_dataset(DataConfig(name="real"), "train")
    held = build_dataset(DataConfig(name="real", eval_height=None, eval_width=None), "eval")
    assert train.ids == list(TRAIN_SCENES) and held.ids == list(EVAL_SCENES)


def test_real_scenes_are_read_with_negatives_clamped_and_counted():
    held = build_dataset(DataConfig(name="real", eval_height=None, eval_width=None), "eval")
    counts = []
    for index in range(len(held)):
        sample, record = held.sample(index)
        assert sample["target"].shape == (256, 512, 3) and (sample["target"] >= 0).all()
        assert np.isfinite(sample["ldr"]).all()
        assert record["negative_policy"] == "clamp"
        counts.append(record["negative_values"])
    raw = io.read_exr(scenes_dir() / "sky.exr")
    assert counts[EVAL_SCENES.index("sky")] == int((raw < 0).sum()) > 0
    assert sum(c > 0 for c in counts) == len(EVAL_SCENES)  # every real file has some: they must not be refused


def _exr(path, image):
    io.write_exr(path, image.astype(np.float32), half=True)
    return path


def test_refuse_policy_skips_a_file_with_negatives_by_name(tmp_path, caplog):
    good = np.full((16, 16, 3), 0.5, np.float32)
    bad = good.copy()
    bad[0, 0, 0] = -0.25
    _exr(tmp_path / "good.exr", good)
    _exr(tmp_path / "ringing.exr", bad)
    clamped = build_dataset(
        DataConfig(name="folder", root=str(tmp_path), eval_count=0, eval_height=None, eval_width=None), "eval"
    )
    assert clamped.ids == ["good", "ringing"] and clamped.describe(1)["negative_values"] == 1
    with caplog.at_level(logging.WARNING, logger="zoo.data.folder"):
        refused = build_dataset(
            DataConfig(
                name="folder",
                root=str(tmp_path),
                eval_count=0,
                eval_height=None,
                eval_width=None,
                negative_values="refuse",
            ),
            "eval",
        )
    assert refused.ids == ["good"]
    (line,) = [r.getMessage() for r in caplog.records]
    assert "ringing.exr" in line and "1 negative values" in line and "\n" not in line
    with pytest.raises(ZooError, match="data.negative_values: expected one of clamp, refuse"):
        build_dataset(DataConfig(name="folder", root=str(tmp_path), negative_values="zero"), "eval")


def test_rgba_exr_uses_its_rgb(tmp_path):
    rgba = np.random.default_rng(0).uniform(0, 4, (8, 12, 4)).astype(np.float32)
    path = tmp_path / "alpha.exr"
    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, {"RGBA": rgba}) as f:
        f.write(str(path))
    np.testing.assert_array_equal(io.read_hdr_image(path), rgba[..., :3])


def test_unreadable_files_are_reported_and_skipped(tmp_path, caplog):
    _exr(tmp_path / "ok.exr", np.full((16, 16, 3), 2.0, np.float32))
    (tmp_path / "truncated.exr").write_bytes(b"\x76\x2f\x31\x01" + b"\0" * 40)
    (tmp_path / "empty.hdr").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="zoo.data.folder"):
        data = build_dataset(DataConfig(name="folder", root=str(tmp_path), eval_count=0), "train")
    assert data.ids == ["ok"] and data[0]["ldr"].shape == (3, 64, 64)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping")]
    assert len(lines) == 2 and any("truncated.exr" in m for m in lines) and any("empty.hdr" in m for m in lines)
    (tmp_path / "ok.exr").unlink()
    with pytest.raises(ZooError, match="none of the 2 train images could be read"):
        build_dataset(DataConfig(name="folder", root=str(tmp_path), eval_count=0), "train")


@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_mixed_source_ratio(fraction):
    data = build_dataset(DataConfig(name="mixed", real_fraction=fraction, patch_size=16), "train")
    sources = [data.part(i).source for i in range(400)]
    share = sources.count("real") / len(sources)
    assert share == pytest.approx(fraction, abs=0.06)
    real_index = next((i for i, s in enumerate(sources) if s == "real"), None)
    if real_index is not None:
        assert data.describe(real_index)["id"] in TRAIN_SCENES  # real training crops come from training scenes only
    data.set_epoch(1)
    assert [data.part(i).source for i in range(400)] != sources or fraction in (0.0, 1.0)


def test_mixed_source_evaluates_on_the_held_out_real_scenes():
    held = build_dataset(DataConfig(name="mixed", eval_height=None, eval_width=None), "eval")
    assert [held.describe(i)["id"] for i in range(len(held))] == list(EVAL_SCENES)
    with pytest.raises(ZooError, match="data.real_fraction"):
        build_dataset(DataConfig(name="mixed", real_fraction=1.5), "train")
