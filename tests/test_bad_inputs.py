"""Bad inputs, one table: each gives a one-line error naming the input and what was expected, a non-zero exit status
(CLI) or a ``ZooError`` (library), and leaves no partial output file.

Three sets of rows:
- ``zoo run`` (real subprocesses, started all at once so the table costs one start-up, not twenty): config, weights,
  unwritable and full output folders.
- ``zoo score`` through the CLI entry point ``zoo.cli.main`` in this process (one row also as a subprocess, for the
  process exit status): NTIRE PNGs and alignratio files.
- ``zoo predict`` through ``zoo.cli.main`` in this process: bad photos (it reports each, skips it, exits 1), weights
  of another model (exit 2).
- the readers and writers of ``zoo.io`` for the formats no command reads (EXR, Radiance HDR): the folder data source
  reads them (its own tests cover that path).

Disk full is simulated two ways: a file-size limit (RLIMIT_FSIZE, any user; Python ignores SIGXFSZ, so writes fail
with EFBIG) and, where the test runs as root and may mount, a 256 KiB tmpfs (a real ENOSPC). A read-only folder is
``chattr +i`` as root (root ignores permission bits), ``chmod 555`` otherwise.
"""

import contextlib
import json
import math
import os
import resource
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import zoo
from zoo import io
from zoo.cli import main as zoo_main
from zoo.errors import ZooError
from zoo.weights import ZOO_FORMAT

ENV = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1", "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
TINY = [
    "model=hdrunet",
    "train.steps=1",
    "train.batch_size=2",
    "train.threads=1",
    "train.progress=false",
    "data.patch_size=32",
    "data.eval_count=1",
    "data.eval_height=32",
    "data.eval_width=48",
]
ROOT = os.geteuid() == 0


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Files a failed command must not leave: weights, checkpoints, temporaries (atomic_write's ``.name.*``)."""
    found = [p.relative_to(folder) for p in folder.rglob("*") if p.is_file()]
    return sorted(str(p) for p in found if p.parts[0] != "in" and (p.suffix == ".pt" or p.name.startswith(".")))


def png_claiming(width: int, height: int, bit_depth: int = 16) -> bytes:
    """A PNG whose IHDR claims ``width``×``height`` RGB and that holds no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real 24×16 JPEG whose frame header is edited to claim ``width``×``height``."""
    ok, buf = cv2.imencode(".jpg", np.zeros((16, 24, 3), np.uint8))
    data = bytearray(buf.tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def hdr_image(h=16, w=24) -> np.ndarray:
    return (np.random.default_rng(0).random((h, w, 3)) * 4).astype(np.float32)


class ReadOnly:
    """A folder nobody may write in, root included (chattr +i), or permission bits for other users."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        if ROOT:
            if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
                pytest.skip("running as root and chattr +i is not available here: cannot make a read-only folder")
        else:
            folder.chmod(0o555)

    def undo(self):
        if ROOT:
            subprocess.run(["chattr", "-i", str(self.folder)], check=True)
        else:
            self.folder.chmod(0o755)


class TinyDisk:
    """A 256 KiB tmpfs: writing a checkpoint into it fails with ENOSPC."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        if not ROOT:
            pytest.skip("mounting a tiny tmpfs needs root")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()})")

    def undo(self):
        subprocess.run(["umount", str(self.folder)], check=True)


def file_size_limit(limit: int):
    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return preexec


# ----------------------------------------------------------------------------------------------------------------------
# zoo run: (arguments given the case folder, expected exit status, the input the error names, what it says)


def _weights(folder: Path, kind: str) -> Path:
    """A weights file of ``kind`` under ``folder``/in (inputs are not outputs: ``leftovers`` does not look there)."""
    (folder / "in").mkdir(exist_ok=True)
    path = folder / "in" / f"{kind}.pt"
    if kind == "twostage_checkpoint":  # a zoo checkpoint, saved for another model
        torch.save({"format": ZOO_FORMAT, "model": "twostage", "state_dict": {"x": torch.zeros(1)}}, path)
    elif kind == "twostage_state_dict":  # a plain state dict of the two-stage network
        torch.save(zoo.create_model("twostage").state_dict(), path)
    elif kind in ("hdrunet_checkpoint", "nan_weights"):
        state = zoo.create_model("hdrunet").state_dict()
        if kind == "nan_weights":
            next(iter(state.values()))[0] = math.nan
        torch.save({"format": ZOO_FORMAT, "model": "hdrunet", "state_dict": state}, path)
    elif kind == "garbage":
        path.write_bytes(b"this is not a checkpoint")
    elif kind == "empty":
        path.write_bytes(b"")
    return path


RUN_CASES = {
    "unknown_model": (lambda d: ["model.name=nosuch"], 2, "nosuch", "unknown model 'nosuch'"),
    "misspelled_config_key": (lambda d: ["train.stepz=3"], 1, "stepz", "Key 'stepz' not in 'TrainConfig'"),
    "weights_of_another_model": (
        lambda d: [f"model.weights={_weights(d, 'twostage_checkpoint')}"],
        2,
        "twostage_checkpoint.pt",
        "weights are for model 'twostage', not 'hdrunet'",
    ),
    "hdrunet_weights_into_twostage": (
        lambda d: ["model=twostage", f"model.weights={_weights(d, 'hdrunet_checkpoint')}"],
        2,
        "hdrunet_checkpoint.pt",
        "weights are for model 'hdrunet', not 'twostage'",
    ),
    "nan_weights": (
        lambda d: [f"model.weights={_weights(d, 'nan_weights')}"],
        2,
        "nan_weights.pt",
        "holds NaN or inf values; expected finite weights",
    ),
    "read_only_results": (lambda d: [f"results_dir={d}/ro"], 2, "results_dir=", "cannot write in this folder"),
    "disk_full_file_size_limit": (lambda d: [], 2, "last.pt", "write failed (File too large)"),
    "disk_full_tmpfs": (lambda d: [f"checkpoint_dir={d}/tiny"], 2, "last.pt", "write failed (No space left on device)"),
}


@pytest.fixture(scope="module")
def run_results(tmp_path_factory):
    """Start every ``zoo run`` case at once; wait for all; undo mounts and attributes."""
    base = tmp_path_factory.mktemp("run_cases")
    procs, undo, skipped = {}, [], {}
    for name, (make_args, *_) in RUN_CASES.items():
        folder = base / name
        folder.mkdir()
        preexec = None
        try:
            if name == "read_only_results":
                undo.append(ReadOnly(folder / "ro"))
            elif name == "disk_full_tmpfs":
                undo.append(TinyDisk(folder / "tiny"))
            elif name == "disk_full_file_size_limit":
                preexec = file_size_limit(1 << 20)  # 1 MiB: rows fit, a checkpoint does not
        except pytest.skip.Exception as exc:
            skipped[name] = str(exc)
            continue
        args = [
            sys.executable,
            "-m",
            "zoo.cli",
            "run",
            *TINY,
            f"results_dir={folder}/runs",
            f"checkpoint_dir={folder}/ck",
            f"hydra.run.dir={folder}/hydra",
            *make_args(folder),
        ]
        procs[name] = subprocess.Popen(
            args, cwd=folder, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec
        )
    done = {name: (proc, *proc.communicate(timeout=600), leftovers(base / name)) for name, proc in procs.items()}
    for item in undo:  # after looking for leftovers: unmounting drops what the tmpfs held
        item.undo()
    yield base, done, skipped


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_zoo_run_bad_input(case, run_results):
    base, done, skipped = run_results
    if case in skipped:
        pytest.skip(skipped[case])
    _, code, names, says = RUN_CASES[case]
    proc, _, stderr, left = done[case]
    assert proc.returncode == code, stderr[-3000:]
    if code == 1:  # Hydra reports composition errors itself (a few lines, no traceback), before anything runs
        assert names in stderr and says in stderr and "Traceback" not in stderr, stderr[-3000:]
    else:
        line = one_error_line(stderr)
        assert names in line and says in line, line
    assert left == []
    folder = base / case
    for row_file in folder.rglob("runs/*.json"):  # a failed row is allowed (sweeps report it); metrics are not
        row = json.loads(row_file.read_text())
        assert row["status"] == "failed" and says in row["error"] and "psnr_mu_ntire" not in row


# ----------------------------------------------------------------------------------------------------------------------
# zoo score: one bad file in the reference folder (the error names it)


def _reference(folder: Path, case: str) -> str:
    """Write a valid reference pair 0001, then break it as ``case`` says; returns the bad file's name."""
    gt, ratio = folder / "0001_gt.png", folder / "0001_alignratio.npy"
    io.write_ntire(gt, hdr_image())
    sixteen = np.full((16, 24, 3), 1000, np.uint16)
    breakers = {
        "truncated_png": lambda: gt.write_bytes(gt.read_bytes()[:60]),
        "zero_byte_png": lambda: gt.write_bytes(b""),
        "png_8bit": lambda: cv2.imwrite(str(gt), sixteen.astype(np.uint8)),
        "png_1_channel": lambda: cv2.imwrite(str(gt), sixteen[..., 0]),
        "png_4_channels": lambda: cv2.imwrite(str(gt), np.dstack([sixteen, sixteen[..., :1]])),
        "png_huge_header": lambda: gt.write_bytes(png_claiming(100_000, 100_000)),
        "alignratio_wrong_shape": lambda: np.save(ratio, np.array([1.0, 2.0, 3.0])),
        "alignratio_zero": lambda: np.save(ratio, np.float32(0.0)),
        "alignratio_nan": lambda: np.save(ratio, np.float32(np.nan)),
        "alignratio_negative": lambda: np.save(ratio, np.float32(-2.0)),
        "alignratio_missing": lambda: ratio.unlink(),
        "alignratio_not_npy": lambda: ratio.write_bytes(b"1.5\n"),
        "alignratio_pickled_object": lambda: np.save(ratio, np.array([{"r": 1.0}], dtype=object), allow_pickle=True),
    }
    breakers[case]()
    return ratio.name if case.startswith("alignratio") and case != "alignratio_missing" else gt.name


SCORE_CASES = {
    "truncated_png": "cannot decode image (corrupt, truncated or unsupported format)",
    "zero_byte_png": "file is empty (0 bytes)",
    "png_8bit": "expected a 16-bit NTIRE PNG, got uint8",
    "png_1_channel": "expected an RGB image, got 1 channel",
    "png_4_channels": "expected an RGB image (3 channels), got 4 channels",
    "png_huge_header": "header says 100000x100000 pixels; expected a positive size of at most 268435456 pixels",
    "alignratio_wrong_shape": "alignratio must be a single number, got shape (3,)",
    "alignratio_zero": "alignratio must be a positive finite number, got 0.0",
    "alignratio_nan": "alignratio must be a positive finite number, got nan",
    "alignratio_negative": "alignratio must be a positive finite number, got -2.0",
    "alignratio_missing": "missing alignratio file 0001_alignratio.npy",
    "alignratio_not_npy": "cannot read alignratio",
    "alignratio_pickled_object": "cannot read alignratio",
}


@pytest.mark.parametrize("case", list(SCORE_CASES))
def test_zoo_score_bad_reference(case, tmp_path, capsys):
    (tmp_path / "ref").mkdir(), (tmp_path / "res").mkdir()
    io.write_ntire(tmp_path / "res" / "0001.png", hdr_image())
    bad = _reference(tmp_path / "ref", case)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = zoo_main(["score", str(tmp_path / "ref"), str(tmp_path / "res")])
    out = capsys.readouterr()
    assert code == 2 and out.out == ""  # nothing printed as if it were a score
    line = one_error_line(out.err)
    assert bad in line and SCORE_CASES[case] in line, line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # scoring writes nothing


def test_zoo_score_huge_header_as_a_process(tmp_path):
    (tmp_path / "ref").mkdir(), (tmp_path / "res").mkdir()
    io.write_ntire(tmp_path / "res" / "0001.png", hdr_image())
    _reference(tmp_path / "ref", "png_huge_header")
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "score", str(tmp_path / "ref"), str(tmp_path / "res")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "0001_gt.png: header says 100000x100000 pixels" in one_error_line(proc.stderr)


# ----------------------------------------------------------------------------------------------------------------------
# zoo predict: one bad photo (reported on one line, skipped, exit 1, nothing written for it)

PREDICT_CASES = {
    "truncated_png": (
        "p.png",
        lambda p: (io.write_png8(p, hdr_image() / 4), p.write_bytes(p.read_bytes()[:80])),
        "cannot decode image (corrupt, truncated or unsupported format)",
    ),
    "zero_byte_png": ("p.png", lambda p: p.write_bytes(b""), "file is empty (0 bytes)"),
    "tiff_float": (
        "p.tif",
        lambda p: cv2.imwrite(str(p), np.zeros((8, 8, 3), np.float32)),
        "expected an 8- or 16-bit integer photo, got float32 samples",
    ),
    "png_greyscale": (
        "p.png",
        lambda p: cv2.imwrite(str(p), np.zeros((8, 8), np.uint8)),
        "expected an RGB image, got 1 channel",
    ),
    "jpeg_huge_header": (
        "p.jpg",
        lambda p: p.write_bytes(jpeg_claiming(60000, 60000)),
        "header says 60000x60000 pixels",
    ),
    "png_huge_header": (
        "p.png",
        lambda p: p.write_bytes(png_claiming(100_000, 100_000, 8)),
        "header says 100000x100000 pixels",
    ),
    "jpeg_that_is_text": ("p.jpg", lambda p: p.write_text("not a photo"), "cannot decode image"),
}


@pytest.mark.parametrize("case", list(PREDICT_CASES))
def test_zoo_predict_bad_photo(case, tmp_path, capsys):
    name, make, says = PREDICT_CASES[case]
    make(tmp_path / name)
    code = zoo_main(["predict", str(tmp_path / name), "-o", str(tmp_path / "out"), "--model", "identity"])
    err = capsys.readouterr().err
    assert code == 1
    line = one_error_line(err)
    assert name in line and says in line, line
    assert list((tmp_path / "out").iterdir()) == []


def test_zoo_predict_weights_of_another_model(tmp_path, capsys):
    io.write_png8(tmp_path / "p.png", hdr_image() / 4)
    weights = _weights(tmp_path, "hdrunet_checkpoint")
    code = zoo_main(
        [
            "predict",
            str(tmp_path / "p.png"),
            "-o",
            str(tmp_path / "out"),
            "--model",
            "twostage",
            "--weights",
            str(weights),
        ]
    )
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "hdrunet_checkpoint.pt" in line and "weights are for model 'hdrunet', not 'twostage'" in line
    assert not (tmp_path / "out").exists()  # the folder it created is removed again


# ----------------------------------------------------------------------------------------------------------------------
# zoo.io readers and writers of the formats no command reads


def _exr(path: Path, channels: dict) -> None:
    import OpenEXR

    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, channels) as f:
        f.write(str(path))


def _exr_with_value(value):
    def make(path):
        image = hdr_image()
        image[3, 5, 1] = value
        _exr(path, {"RGB": image})

    return make


def _exr_huge_header(path):
    io.write_exr(path, hdr_image())
    data = bytearray(path.read_bytes())
    at = data.find(b"dataWindow\0box2i\0") + len(b"dataWindow\0box2i\0") + 4
    data[at : at + 16] = struct.pack("<4i", 0, 0, 99_999, 99_999)
    path.write_bytes(bytes(data))


def _truncated(writer):
    def make(path):
        writer(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return make


READER_CASES = {
    "exr_truncated": (
        "x.exr",
        _truncated(lambda p: io.write_exr(p, hdr_image())),
        io.read_hdr_image,
        "cannot read EXR",
    ),
    "exr_zero_byte": ("x.exr", lambda p: p.write_bytes(b""), io.read_hdr_image, "file is empty (0 bytes)"),
    "exr_nan": ("x.exr", _exr_with_value(np.nan), io.read_hdr_image, "contains NaN or inf values; expected finite"),
    "exr_inf": ("x.exr", _exr_with_value(np.inf), io.read_hdr_image, "contains NaN or inf values; expected finite"),
    "exr_negative": ("x.exr", _exr_with_value(-0.5), io.read_hdr_image, "negative values (min -0.5); expected >= 0"),
    "exr_huge_header": ("x.exr", _exr_huge_header, io.read_hdr_image, "header says 100000x100000 pixels"),
    "exr_luminance_only": (
        "x.exr",
        lambda p: _exr(p, {"Y": hdr_image()[..., 0].copy()}),
        io.read_hdr_image,
        "EXR has no R, G, B channels (found Y)",
    ),
    "exr_that_is_a_tiff": (
        "x.exr",
        lambda p: p.write_bytes(b"II*\0" + bytes(64)),
        io.read_hdr_image,
        "not an OpenEXR file",
    ),
    "hdr_without_radiance_header": (
        "x.hdr",
        lambda p: p.write_bytes(b"P6\n2 2\n255\n" + bytes(12)),
        io.read_hdr_image,
        "not a Radiance HDR file",
    ),
    "hdr_unsupported_suffix": (
        "x.pfm",
        lambda p: p.write_bytes(b"PF\n"),
        io.read_hdr_image,
        "unsupported HDR format '.pfm'; expected .exr or .hdr",
    ),
    "ldr_16bit": (
        "x.png",
        lambda p: cv2.imwrite(str(p), np.zeros((4, 4, 3), np.uint16)),
        io.read_ldr,
        "expected an 8-bit image, got uint16",
    ),
    "ldr_rgba": ("x.png", lambda p: cv2.imwrite(str(p), np.zeros((4, 4, 4), np.uint8)), io.read_ldr, "got 4 channels"),
    "ldr_huge_header": (
        "x.png",
        lambda p: p.write_bytes(png_claiming(100_000, 100_000, 8)),
        io.read_ldr,
        "header says 100000x100000 pixels",
    ),
    "ldr_header_one_row_over_the_limit": (
        "x.png",
        lambda p: p.write_bytes(png_claiming(16_384, 16_385, 8)),
        io.read_ldr,
        "header says 16384x16385 pixels",
    ),  # OpenCV alone: 1 Gpx
    "ldr_zero_width_header": (
        "x.png",
        lambda p: p.write_bytes(png_claiming(0, 10, 8)),
        io.read_ldr,
        "header says 0x10 pixels; expected a positive size",
    ),
}


WEIGHTS_CASES = {
    "twostage_state_dict_into_hdrunet": ("twostage_state_dict", "weights do not fit model 'hdrunet'; missing keys"),
    "garbage_weights": (
        "garbage",
        "not a torch checkpoint (a file starting with b'this'); expected a file written " "by torch.save",
    ),
    "zero_byte_weights": ("empty", "not a torch checkpoint (an empty file)"),
    "missing_weights": ("missing", "no such weights file"),
}


@pytest.mark.parametrize("case", list(WEIGHTS_CASES))
def test_load_weights_bad_file(case, tmp_path):
    """The loader `zoo run model.weights=...` calls (its CLI rows are above)."""
    kind, says = WEIGHTS_CASES[case]
    path = _weights(tmp_path, kind)
    with pytest.raises(ZooError) as info:
        zoo.load_weights(zoo.create_model("hdrunet"), path)
    message = str(info.value)
    assert path.name in message and says in message and "\n" not in message, message


@pytest.mark.parametrize("case", list(READER_CASES))
def test_reader_bad_input(case, tmp_path):
    name, make, read, says = READER_CASES[case]
    make(tmp_path / name)
    with pytest.raises(ZooError) as info:
        read(tmp_path / name)
    message = str(info.value)
    assert name in message and says in message and "\n" not in message, message


@contextlib.contextmanager
def small_file_limit():
    """An 8 KiB file-size limit for this process, only around the write under test: while it holds, any other write
    past 8 KiB fails too (pytest's own output when it goes to a file), so it must not outlive the call."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, hard))  # Python ignores SIGXFSZ: big writes fail with EFBIG
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("writer", ["exr", "ntire"])
def test_writer_on_a_full_disk_leaves_nothing(writer, tmp_path):
    image = np.random.default_rng(0).random((128, 128, 3)).astype(np.float32)  # compresses to well over 8 KiB
    write = {"exr": io.write_exr, "ntire": io.write_ntire}[writer]
    with pytest.raises(ZooError, match=r"x\.(exr|png): write failed"):
        with small_file_limit():
            write(tmp_path / f"x.{'exr' if writer == 'exr' else 'png'}", image)
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary, no alignratio without its PNG


def test_writer_into_a_read_only_folder_leaves_nothing(tmp_path):
    folder = ReadOnly(tmp_path / "ro")
    try:
        with pytest.raises(ZooError, match=r"x\.png: cannot write in .*ro"):
            io.write_ntire(tmp_path / "ro" / "x.png", hdr_image())
    finally:
        folder.undo()
    assert list((tmp_path / "ro").iterdir()) == []
