"""Image I/O with real files: NTIRE PNG + alignratio, EXR (real EXR bytes), Radiance HDR, 8-bit LDR."""

import cv2
import numpy as np
import pytest

from zoo import io
from zoo.errors import ZooError


def hdr_image(h=20, w=30, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((h, w, 3)) * 3).astype(np.float32)


def test_ntire_round_trip_within_half_step(tmp_path):
    image = hdr_image()
    png, ratio = io.write_ntire(tmp_path / "0001.png", image)
    assert ratio.name == "0001_alignratio.npy"
    back = io.read_ntire(png)
    assert back.dtype == np.float32
    step = image.max() / 65535
    assert np.abs(back - image).max() <= 0.5 * step * 1.001
    raw = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.max() == 65535
    assert np.allclose(raw[..., ::-1] / np.load(ratio), back)  # RGB stored as BGR on disk


def test_ntire_writer_clamps_negatives(tmp_path):
    image = hdr_image()
    image[0, 0, 0] = -4.0  # the official writer wraps this around to ~65532
    io.write_ntire(tmp_path / "0002.png", image)
    back = io.read_ntire(tmp_path / "0002.png")
    assert back[0, 0, 0] == 0.0


def test_ntire_refuses_all_zero(tmp_path):
    with pytest.raises(ZooError, match="all-zero"):
        io.write_ntire(tmp_path / "z.png", np.zeros((4, 4, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_ntire_missing_alignratio(tmp_path):
    io.write_ntire(tmp_path / "0003.png", hdr_image())
    (tmp_path / "0003_alignratio.npy").unlink()
    with pytest.raises(ZooError, match="missing alignratio file 0003_alignratio.npy"):
        io.read_ntire(tmp_path / "0003.png")


@pytest.mark.parametrize("bad", [np.zeros(3), np.float32(0), np.float32(np.nan)])
def test_ntire_bad_alignratio(tmp_path, bad):
    io.write_ntire(tmp_path / "0004.png", hdr_image())
    np.save(tmp_path / "0004_alignratio.npy", bad)
    with pytest.raises(ZooError, match="0004_alignratio.npy"):
        io.read_ntire(tmp_path / "0004.png")


def test_ntire_reader_refuses_8bit(tmp_path):
    io.write_png8(tmp_path / "0005.png", np.full((4, 4, 3), 0.5, np.float32))
    np.save(tmp_path / "0005_alignratio.npy", np.float32(1))
    with pytest.raises(ZooError, match="expected a 16-bit NTIRE PNG"):
        io.read_ntire(tmp_path / "0005.png")


@pytest.mark.parametrize("half", [True, False])
def test_exr_round_trip_and_magic(tmp_path, half):
    image = hdr_image()
    path = io.write_exr(tmp_path / "x.exr", image, half=half)
    assert path.read_bytes()[:4] == io.EXR_MAGIC
    back = io.read_hdr_image(path)
    tol = 2e-3 * 3 if half else 0
    assert np.abs(back - image).max() <= tol


def test_radiance_round_trip_and_magic(tmp_path):
    image = hdr_image() + 0.1
    path = io.write_hdr(tmp_path / "x.hdr", image)
    assert path.read_bytes()[:10] in (b"#?RADIANCE", b"#?RGBE\n" + path.read_bytes()[7:10])
    back = io.read_hdr_image(path)
    assert np.abs(back - image).max() / image.max() < 0.01  # RGBE: 8-bit shared-exponent mantissa


def test_ldr_reader(tmp_path):
    image = np.random.default_rng(0).random((7, 9, 3)).astype(np.float32)
    io.write_png8(tmp_path / "a.png", image)
    back = io.read_ldr(tmp_path / "a.png")
    assert back.shape == (7, 9, 3) and np.abs(back - image).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10), "cannot decode"),
        (lambda p: cv2.imwrite(str(p), np.zeros((4, 4, 3), np.uint16)), "expected an 8-bit image, got uint16"),
        (lambda p: cv2.imwrite(str(p), np.zeros((4, 4), np.uint8)), "got 1 channel"),
        (lambda p: cv2.imwrite(str(p), np.zeros((4, 4, 4), np.uint8)), "got 4 channels"),
    ],
)
def test_ldr_bad_inputs(tmp_path, make, message):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ZooError, match=message) as info:
        io.read_ldr(path)
    assert "bad.png" in str(info.value)


def test_truncated_png(tmp_path):
    io.write_png8(tmp_path / "t.png", np.random.default_rng(0).random((64, 64, 3)))
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ZooError, match="t.png"):
        io.read_ldr(tmp_path / "t.png")


@pytest.mark.parametrize("value", [np.nan, np.inf, -1.0])
def test_hdr_reader_refuses_bad_values(tmp_path, value):
    image = hdr_image()
    image[1, 1, 1] = value
    # write float32 EXR directly so the bad value survives
    import OpenEXR

    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, {"RGB": image}) as f:
        f.write(str(tmp_path / "bad.exr"))
    with pytest.raises(ZooError, match="bad.exr"):
        io.read_hdr_image(tmp_path / "bad.exr")


def test_exr_with_wrong_magic(tmp_path):
    (tmp_path / "tiff.exr").write_bytes(b"II*\x00" + b"\x00" * 100)  # what imageio writes into .exr names
    with pytest.raises(ZooError, match="not an OpenEXR file"):
        io.read_hdr_image(tmp_path / "tiff.exr")


def test_writer_into_missing_folder(tmp_path):
    with pytest.raises(ZooError, match="does not exist"):
        io.write_exr(tmp_path / "nope" / "x.exr", hdr_image())


def test_failed_write_leaves_nothing(tmp_path):
    bad = hdr_image()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ZooError):
        io.write_exr(tmp_path / "x.exr", bad)
    assert list(tmp_path.iterdir()) == []
