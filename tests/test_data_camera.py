"""The forward camera (zoo.data.camera): exposure, noise, clipping, response, quantisation, JPEG, reproducibility."""

import json

import numpy as np
import pytest

from zoo.data import CameraConfig, DataConfig, build_dataset, crf, scenes
from zoo.data import camera as cam
from zoo.data.common import sample_rng
from zoo.errors import ZooError


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return scenes.render(scenes.draw_scene(sample_rng("test-camera", 0)), 64, 96)


def quiet_camera(**overrides) -> CameraConfig:
    """A camera with noise and JPEG off and the exact gamma-2.24 response."""
    return CameraConfig(noise=False, eval_noise=False, jpeg=False, eval_jpeg=False, response="gamma", **overrides)


@pytest.mark.parametrize("q", [0.01, 0.05, 0.15])
def test_exposure_hits_the_requested_clip_fraction(scene, q):
    t = cam.exposure_for_clip_fraction(scene, q)
    achieved = float((cam.max_rgb(scene * np.float32(t)) > 1.0).mean())
    assert abs(achieved - q) <= 2.0 / scene[..., 0].size + 1e-9, (q, achieved)


def test_recorded_clip_fraction_with_noise_stays_near_the_target():
    data = build_dataset(DataConfig(eval_count=4, eval_height=64, eval_width=96), "eval")
    for i in range(len(data)):
        record = data.describe(i)
        assert record["clip_fraction"] == 0.05
        assert abs(record["clipped_fraction"] - 0.05) < 0.02, record["clipped_fraction"]


def test_noise_and_jpeg_off_give_an_exactly_quantised_gamma_image():
    cfg = DataConfig(eval_count=2, eval_height=64, eval_width=96, camera=quiet_camera())
    data = build_dataset(cfg, "eval")
    a, record = data.sample(1)
    assert list(record["signal_noise"]) == [0, 0, 0] and record["jpeg_quality"] == 0
    np.testing.assert_array_equal(a["linear_noisy"], a["linear"])
    np.testing.assert_array_equal(a["linear_clipped"], np.minimum(a["linear"], 1))
    curve = crf.GRID ** (1 / 2.24)
    expected = np.floor(crf.apply_curve(np.minimum(a["linear"], 1), curve) * np.float32(255) + np.float32(0.5)) / 255
    np.testing.assert_array_equal(a["ldr"], expected.astype(np.float32))
    # and that is the analytic gamma curve up to half a code value (plus the lookup's error on the steep foot)
    analytic = np.minimum(a["linear"], 1) ** (1 / 2.24)
    foot = a["linear"] < 2 / 1023
    assert np.abs(a["ldr"] - analytic)[~foot].max() <= 0.5 / 255 + 2e-3
    np.testing.assert_array_equal(a["target"], np.power(a["linear"], np.float32(1 / 2.24)))
    assert np.abs(a["inv_crf"] - crf.GRID**2.24).max() < 1.5e-3


def test_intermediates_are_consistent_with_the_recorded_parameters():
    data = build_dataset(DataConfig(train_length=8), "train")
    a, record = data.sample(3)
    curve = crf.curve_bank().by_name(record["curve"])
    np.testing.assert_array_equal(a["linear_clipped"], np.minimum(a["linear_noisy"], 1))
    np.testing.assert_array_equal(a["ldr_unquantized"], crf.apply_curve(a["linear_clipped"], curve.forward))
    np.testing.assert_array_equal(a["inv_crf"], curve.inverse.astype(np.float32))
    np.testing.assert_allclose(a["target"] ** 2.24, a["linear"], rtol=1e-4, atol=1e-6)
    assert np.array_equal(np.round(a["ldr"] * 255), a["ldr"] * 255)  # on the 8-bit grid, JPEG or not
    assert (a["linear_noisy"] >= 0).all() and a["ldr"].min() >= 0 and a["ldr"].max() <= 1
    json.dumps(data.describe(3))


def test_noise_terms_and_levels_are_drawn_independently(scene):
    """The official graph shares one normal draw between the signal and read terms (n1 = n2); we must not."""
    flat = np.full((64, 64, 3), 0.5, dtype=np.float32)
    curve = crf.curve_bank().train[0]
    s, c = 0.01, 0.004
    only_signal = cam.capture(flat, cam.CameraParams(0.05, (s,) * 3, (0.0,) * 3), curve, sample_rng(1), exposure=1.0)
    only_read = cam.capture(flat, cam.CameraParams(0.05, (0.0,) * 3, (c,) * 3), curve, sample_rng(1), exposure=1.0)
    n1 = (only_signal.linear_noisy - 0.5) / (s * 0.5)
    n2 = (only_read.linear_noisy - 0.5) / c
    assert abs(n1.std() - 1) < 0.05 and abs(n2.std() - 1) < 0.05
    assert abs(np.corrcoef(n1.ravel(), n2.ravel())[0, 1]) < 0.05
    signal, read = cam.draw_noise(sample_rng(2), 0.08 / 6, 0.005)
    assert len(set(signal)) == 3 and len(set(read)) == 3
    assert all(0 <= v <= 0.08 / 6 for v in signal) and all(0 <= v <= 0.005 for v in read)
    assert [v / (0.08 / 6) for v in signal] != [v / 0.005 for v in read]  # not one shared uniform draw


def test_jpeg_is_applied_and_its_encoder_recorded(scene):
    curve = crf.curve_bank().train[0]
    plain = cam.capture(scene, cam.CameraParams(0.05), curve, sample_rng(0))
    jpeg = cam.capture(scene, cam.CameraParams(0.05, jpeg_quality=90), curve, sample_rng(0))
    assert not np.array_equal(plain.ldr, jpeg.ldr)
    assert np.abs(plain.ldr - jpeg.ldr).mean() < 0.02
    np.testing.assert_array_equal(plain.ldr_unquantized, jpeg.ldr_unquantized)
    assert jpeg.record["jpeg_encoder"].startswith("opencv ") and "jpeg" in jpeg.record["jpeg_encoder"].lower()
    assert plain.record["jpeg_encoder"] == ""


def test_the_pipeline_is_bit_reproducible_for_a_seed_and_index():
    cfg = DataConfig(train_length=16)
    first = build_dataset(cfg, "train")
    second = build_dataset(cfg, "train")
    second.sample(9)  # call order and other items must not matter
    a, ra = first.sample(5)
    b, rb = second.sample(5)
    assert ra == rb
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    c, _ = first.sample(6)
    assert not np.array_equal(a["ldr"], c["ldr"])
    second.set_epoch(1)
    d, rd = second.sample(5)
    assert rd["epoch"] == 1 and not np.array_equal(a["ldr"], d["ldr"])
    other_seed = build_dataset(DataConfig(train_length=16, seed=1), "train")
    assert not np.array_equal(a["ldr"], other_seed.sample(5)[0]["ldr"])


def test_an_all_black_image_cannot_be_exposed():
    with pytest.raises(ZooError, match="black.exr: HDR image is all zero"):
        cam.exposure_for_clip_fraction(np.zeros((8, 8, 3), np.float32), 0.05, "black.exr")
