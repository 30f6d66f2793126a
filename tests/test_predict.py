"""`zoo predict` as users run it: real subprocesses, real image files, every registered model, every output format."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import zoo
from zoo import io, pretrained
from zoo.domains import to_linear
from zoo.predict import FORMATS, predict_image, write_outputs
from zoo.weights import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def zoo_predict(*args, prefix=(), timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1"}
    command = [*prefix, sys.executable, "-m", "zoo.cli", "predict", "--threads", "2", *map(str, args)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def write_photo(path: Path, height: int, width: int, seed: int = 0) -> Path:
    """A smooth random 8-bit photo with a clipped highlight (what the models are for)."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (4, 5, 3)).astype(np.float32)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    image[height // 3 : height // 2, width // 3 : width // 2] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8))
    return path


def read_output(out_dir: Path, base: str, fmt: str) -> np.ndarray:
    """Read a written output with the zoo readers, after checking its magic bytes; returns linear radiance."""
    if fmt == "exr":
        path = out_dir / f"{base}.exr"
        assert path.read_bytes()[:4] == io.EXR_MAGIC
        return io.read_exr(path)
    if fmt == "hdr":
        path = out_dir / f"{base}.hdr"
        assert path.read_bytes().startswith((b"#?RADIANCE", b"#?RGBE"))
        return io.read_hdr_image(path)
    path = out_dir / f"{base}.png"
    assert path.read_bytes()[:8] == PNG_MAGIC
    return to_linear(io.read_ntire(path), "ntire_gamma")


def assert_no_temporary_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


@pytest.mark.parametrize("index,name", list(enumerate(zoo.list_models())))
def test_cli_predicts_an_odd_size_with_every_model(tmp_path, index, name):
    fmt = FORMATS[index % len(FORMATS)]  # the formats rotate over the models; test_every_format_* covers all three
    photo = write_photo(tmp_path / "in" / "0007_medium.png", 77, 101, seed=index)
    out = tmp_path / "out"
    proc = zoo_predict("--model", name, photo, "-o", out, "--format", fmt)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if zoo.get_spec(name).is_baseline:  # nothing to load, nothing to warn about
        assert "RANDOM" not in proc.stderr and "pretrained" not in proc.stderr
    elif name in pretrained.available():  # no --weights: the shipped weights
        assert f"using the shipped pretrained weights of {name!r}" in proc.stderr and "RANDOM" not in proc.stderr
    else:
        assert "RANDOM weights" in proc.stderr
    base = "0007" if fmt == "ntire" else "0007_medium"
    hdr = read_output(out, base, fmt)
    assert hdr.shape == (77, 101, 3) and np.isfinite(hdr).all() and (hdr >= 0).all()
    preview = io.read_ldr(out / f"{base}_preview.png")
    assert preview.shape == (77, 101, 3)
    assert_no_temporary_files(out)


def test_cli_tiles_a_folder_skips_an_unreadable_file_and_matches_the_api(tmp_path):
    """The brief's example size (517×389) through the CLI with forced tiling (2×2 tiles), against the untiled Python
    API with the same weights; a corrupt file in the folder is reported on one line and skipped."""
    name = "twostage"  # the smaller halo keeps this test fast
    model = zoo.create_model(name).eval()
    weights = save_checkpoint(tmp_path / f"{name}.pt", model)
    folder = tmp_path / "photos"
    good = write_photo(folder / "street.jpg", 389, 517)
    (folder / "broken.png").write_bytes(PNG_MAGIC + b"truncated")
    out = tmp_path / "out"
    proc = zoo_predict("--model", name, "--weights", weights, folder, "-o", out, "--tile", "272")
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "broken.png" in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "RANDOM" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["street.exr", "street_preview.png"]
    expected = to_linear(predict_image(model, io.read_ldr(good), tile=0), model.zoo_spec.output_domain)
    written = io.read_exr(out / "street.exr")
    # float16 storage: relative error ≤ 2^-11, plus tiny absolute slack near 0
    assert np.all(np.abs(written - expected) <= 1e-3 * np.abs(expected) + 1e-4)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_written_readable_and_all_or_nothing(tmp_path, fmt):
    rng = np.random.default_rng(1)
    native = rng.uniform(-0.1, 3.0, (33, 47, 3)).astype(np.float32)  # an unclamped ntire_gamma model output
    written = write_outputs(native, "ntire_gamma", tmp_path, "0001", fmt)
    assert written[-1].name == "0001_preview.png" and all(p.is_file() for p in written)
    hdr = read_output(tmp_path, "0001", fmt)
    expected = to_linear(native, "ntire_gamma")
    tolerance = {"exr": 1e-3, "hdr": 1e-2, "ntire": 1e-3}[fmt]  # float16, RGBE mantissa, uint16 of the gamma value
    assert np.all(np.abs(hdr - expected) <= tolerance * expected.max())
    assert_no_temporary_files(tmp_path)


def test_predict_image_keeps_the_native_domain_at_odd_sizes():
    model = zoo.create_model("twostage").eval()
    ldr = np.random.default_rng(2).uniform(0, 1, (31, 45, 3)).astype(np.float32)
    result = predict_image(model, ldr)
    with torch.inference_mode():
        reference = model(torch.from_numpy(ldr).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert result.shape == (31, 45, 3) and result.dtype == np.float32
    assert np.abs(result - reference).max() <= 1e-5


def _read_only_prefix(folder: Path) -> tuple[str, ...]:
    """A command prefix under which ``folder`` (mode 0555) is really not writable: none for ordinary users; for root,
    an unprivileged user namespace (``unshare --user`` drops the capability that overrides file modes)."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("unshare") is None:
        pytest.skip("running as root and `unshare` is unavailable: cannot make a folder read-only")
    probe = subprocess.run(["unshare", "--user", "touch", str(folder / "probe")], capture_output=True)
    if probe.returncode == 0:
        (folder / "probe").unlink()
        pytest.skip("running as root: a mode-0555 folder stays writable even in a user namespace")
    return ("unshare", "--user")


def test_read_only_output_folder_is_one_line_error_and_no_files(tmp_path):
    photo = write_photo(tmp_path / "a.png", 21, 23)
    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o555)
    try:
        prefix = _read_only_prefix(out)
        proc = zoo_predict("--model", "identity", photo, "-o", out, prefix=prefix)
    finally:
        out.chmod(0o755)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and str(out) in lines[0], proc.stderr
    assert list(out.iterdir()) == []


def test_missing_weights_file_is_one_line_error(tmp_path):
    photo = write_photo(tmp_path / "a.png", 21, 23)
    proc = zoo_predict("--model", "hdrunet", "--weights", tmp_path / "nope.pt", photo, "-o", tmp_path / "out")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nope.pt" in lines[0] and lines[0].startswith("error:"), proc.stderr
    assert not (tmp_path / "out").exists()  # the output folder it had created is removed again
