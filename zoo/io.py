"""Image files: 8-bit LDR inputs, the NTIRE 2021 16-bit PNG + alignratio format, OpenEXR and Radiance HDR.

All arrays are H×W×3 float32 RGB. Every writer is atomic (temporary file in the same folder, then rename), so a failed
write never leaves a half-written output. Every reader fails with a one-line ``ZooError`` naming the file.
"""

from __future__ import annotations

import io as io_module
import logging
import os
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")  # must precede the first cv2 import (docs/environment.md)
# OpenCV checks this against the header before it allocates (read once, at the first decode); PNG and EXR headers are
# also checked here first (``_check_header_size``) so those errors say what was wrong.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(16384 * 16384))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from zoo.errors import ZooError  # noqa: E402

log = logging.getLogger(__name__)

LDR_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
HDR_SUFFIXES = (".exr", ".hdr")
EXR_MAGIC = b"\x76\x2f\x31\x01"
MAX_PIXELS = 16384 * 16384  # refuse absurd headers before decoding them
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path next to ``path`` (same suffix), then rename it into place."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ZooError(f"{path}: output folder {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise ZooError(f"{path}: cannot write in {path.parent} ({exc.strerror})") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the mode a plain open() would
        os.replace(tmp, path)
    except BaseException as exc:
        full = not isinstance(exc, OSError | ZooError) and _disk_full(path.parent)  # before the unlink frees space
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ZooError(f"{path}: write failed ({exc.strerror or exc})") from None
        if full:  # e.g. torch.save reports a short write as a RuntimeError
            raise ZooError(f"{path}: write failed (no space left on device)") from None
        raise
    return path


def check_writable_folder(folder: str | Path, name: str) -> Path:
    """Create ``folder`` if needed and make sure files can be created in it, so a command fails in a second, not after
    its work. ``name`` is how the user gave the path (``results_dir=out``, ``--out out``); the error is one line."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ZooError(f"{name}: {path} exists and is not a folder; expected a writable folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or exc
        raise ZooError(f"{name}: cannot write in this folder ({reason}); expected a writable folder") from None
    return path


def _disk_full(folder: Path) -> bool:
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


@contextmanager
def native_messages_captured(path: Path) -> Iterator[None]:
    """Run a decoder with file descriptors 1 and 2 captured: libpng, libjpeg and OpenEXR print warnings and errors
    straight to the C stdout/stderr ("libpng warning: iCCP: ...", "EXR_ERR_BAD_CHUNK_LEADER ..."), which would
    surround the zoo's own one-line error with noise. What they said is kept at debug level (``zoo -v``)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError):  # no usable descriptors (embedded interpreters): nothing to capture
        yield
        return
    python_side = io_module.StringIO()  # the OpenEXR bindings print some warnings through Python's sys.stdout
    with tempfile.TemporaryFile() as sink, redirect_stdout(python_side), redirect_stderr(python_side):
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            _flush_c_stdio()  # C++ iostreams and C stdio buffer what they print: flush it into the sink, not later
            for fd, original in zip((1, 2), saved, strict=True):
                os.dup2(original, fd)
                os.close(original)
            sink.seek(0)
            said = (sink.read().decode(errors="replace") + python_side.getvalue()).strip()
            if said:
                log.debug("%s: decoder messages: %s", path, " | ".join(said.splitlines()))


def _flush_c_stdio() -> None:
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to ask (not POSIX): nothing buffered there to worry about
        pass


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ZooError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ZooError(f"{path}: file is empty (0 bytes)")


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG IHDR chunk, a JPEG frame header or an OpenEXR dataWindow, read without decoding;
    None for other formats or a header this cheap parser does not follow (the decoder then checks)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(head)
    if head[:4] == EXR_MAGIC:
        pos = 8  # magic + version; then attributes: name\0 type\0 int32 size, value; an empty name ends the header
        while pos < len(head) and head[pos] != 0:
            name_end = head.find(b"\0", pos)
            type_end = head.find(b"\0", name_end + 1)
            if name_end < 0 or type_end < 0 or type_end + 5 > len(head):
                return None
            (size,) = struct.unpack("<i", head[type_end + 1 : type_end + 5])
            value = head[type_end + 5 : type_end + 5 + size]
            if head[pos:name_end] == b"dataWindow" and len(value) == 16:
                x0, y0, x1, y1 = struct.unpack("<4i", value)
                return x1 - x0 + 1, y1 - y0 + 1
            pos = type_end + 5 + size
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first start-of-frame segment of a JPEG: markers are FF xx + a 2-byte length."""
    pos = 2
    while pos + 9 <= len(head) and head[pos] == 0xFF:
        marker = head[pos + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn (not DHT, JPG, DAC)
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return width, height
        (length,) = struct.unpack(">H", head[pos + 2 : pos + 4])
        pos += 2 + length
    return None


def _check_header_size(path: Path) -> None:
    """Refuse an image whose header claims more than ``MAX_PIXELS`` before anything is allocated for it."""
    size = _header_size(path)
    if size is not None and (size[0] <= 0 or size[1] <= 0 or size[0] * size[1] > MAX_PIXELS):
        raise ZooError(
            f"{path}: header says {size[0]}x{size[1]} pixels; expected a positive size of at most "
            f"{MAX_PIXELS} pixels"
        )


def _decode(path: Path, flags: int) -> np.ndarray:
    _check_file(path)
    _check_header_size(path)
    data = np.fromfile(path, dtype=np.uint8)
    try:
        with native_messages_captured(path):
            image = cv2.imdecode(data, flags)
    except cv2.error:
        image = None
    if image is None:
        raise ZooError(f"{path}: cannot decode image (corrupt, truncated or unsupported format)")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ZooError(f"{path}: image is {image.shape[1]}x{image.shape[0]}, larger than the {MAX_PIXELS} pixel limit")
    return image


def _to_rgb(image: np.ndarray, path: Path) -> np.ndarray:
    if image.ndim == 2:
        raise ZooError(f"{path}: expected an RGB image, got 1 channel (greyscale)")
    if image.shape[2] != 3:
        raise ZooError(f"{path}: expected an RGB image (3 channels), got {image.shape[2]} channels")
    return np.ascontiguousarray(image[..., ::-1])


def read_ldr(path: str | Path) -> np.ndarray:
    """Read an 8-bit RGB photo (PNG/JPEG/TIFF/BMP) as float32 H×W×3 in [0, 1]. 16-bit files are refused: an LDR input
    is 8-bit by definition (NTIRE ``_medium``), and silently rescaling would change what the model sees."""
    path = Path(path)
    image = _decode(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint8:
        raise ZooError(f"{path}: expected an 8-bit image, got {image.dtype} ({image.dtype.itemsize * 8}-bit)")
    return _to_rgb(image, path).astype(np.float32) / 255.0


def _image_to_write(path: Path, image: np.ndarray) -> np.ndarray:
    """float32 H×W×3 with finite values, or a ``ZooError`` naming the output file."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ZooError(f"{path}: expected an HxWx3 image to write, got shape {image.shape}")
    if not np.isfinite(image).all():
        raise ZooError(f"{path}: refusing to write an image with NaN or inf values")
    return image


NEGATIVE_POLICIES = ("clamp", "refuse", "fill")


def handle_negatives(image: np.ndarray, path: str | Path, policy: str) -> tuple[np.ndarray, int]:
    """(image, number of negative values). NaN/inf are always refused. Negative values are what lossy HDR
    compression (ringing next to suns and lamps) leaves in real files: ``"clamp"`` sets them to 0, ``"refuse"``
    raises an error naming the file, ``"fill"`` replaces every pixel with a negative channel by its valid
    neighbours (``fill_invalid_pixels``): the file defines no radiance there, and a clamped 0 is a black hole next to
    a sun that no camera would record."""
    if policy not in NEGATIVE_POLICIES:
        raise ZooError(f"negative values policy: expected one of {', '.join(NEGATIVE_POLICIES)}, got {policy!r}")
    if not np.isfinite(image).all():
        raise ZooError(f"{path}: HDR image contains NaN or inf values; expected finite values")
    negative = image < 0
    count = int(np.count_nonzero(negative))
    if count and policy == "refuse":
        raise ZooError(
            f"{path}: HDR image contains {count} negative values (min {float(image.min()):.4g}); "
            f"expected >= 0 (data.negative_values=clamp sets them to 0, =fill fills them from their neighbours)"
        )
    if count and policy == "fill":
        image = fill_invalid_pixels(image, negative.any(axis=-1))
    elif count:
        image = np.maximum(image, 0, out=image if image.flags.writeable else None)
    return image, count


def fill_invalid_pixels(image: np.ndarray, invalid: np.ndarray) -> np.ndarray:
    """``image`` (H, W, C) with every ``invalid`` pixel replaced by the mean of its valid 3×3 neighbours, repeated
    outwards until none is left (normalised convolution; ringing comes in thin bands, so one or two passes fill
    it). An image with no valid pixel becomes 0."""
    out = np.where(invalid[..., None], 0.0, image).astype(np.float32)
    valid = (~invalid).astype(np.float32)
    if not valid.any():
        return np.zeros_like(out)
    while not valid.all():
        total = cv2.boxFilter(out * valid[..., None], -1, (3, 3), normalize=False, borderType=cv2.BORDER_REFLECT)
        weight = cv2.boxFilter(valid, -1, (3, 3), normalize=False, borderType=cv2.BORDER_REFLECT)
        grow = (valid == 0) & (weight > 0)
        out[grow] = total[grow] / weight[grow][:, None]
        valid[grow] = 1.0
    return out


# ----------------------------------------------------------------------------------------------------------------------
# NTIRE 2021: uint16 PNG of the gamma-encoded image scaled so its max is 65535, plus a 0-d alignratio array.


def alignratio_path(png_path: str | Path) -> Path:
    """``NNNN.png`` / ``NNNN_gt.png`` → ``NNNN_alignratio.npy`` (the organizers' naming)."""
    png_path = Path(png_path)
    stem = png_path.stem.removesuffix("_gt")
    return png_path.with_name(f"{stem}_alignratio.npy")


def read_ntire(png_path: str | Path, ratio_path: str | Path | None = None) -> np.ndarray:
    """Read an NTIRE HDR image: float32 RGB = uint16 / float32(alignratio), gamma-encoded (linear = x**2.24)."""
    png_path = Path(png_path)
    ratio_path = Path(ratio_path) if ratio_path is not None else alignratio_path(png_path)
    image = _decode(png_path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint16:
        raise ZooError(f"{png_path}: expected a 16-bit NTIRE PNG, got {image.dtype}")
    image = _to_rgb(image, png_path)
    if not ratio_path.is_file():
        raise ZooError(f"{png_path}: missing alignratio file {ratio_path.name}")
    try:
        ratio = np.load(ratio_path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a bad file
        raise ZooError(f"{ratio_path}: cannot read alignratio ({type(exc).__name__})") from None
    if ratio.size != 1:
        raise ZooError(f"{ratio_path}: alignratio must be a single number, got shape {ratio.shape}")
    ratio = np.float32(ratio.reshape(()))
    if not np.isfinite(ratio) or ratio <= 0:
        raise ZooError(f"{ratio_path}: alignratio must be a positive finite number, got {ratio}")
    return image.astype(np.float32) / ratio


def write_ntire(png_path: str | Path, image: np.ndarray) -> tuple[Path, Path]:
    """Write the NTIRE pair. Negatives are clamped to 0 first (the official writer wraps them around in the uint16
    cast); an all-zero or non-finite image is refused (the official writer divides by zero)."""
    png_path = Path(png_path)
    image = np.maximum(_image_to_write(png_path, image), 0.0)
    peak = float(image.max())
    if peak <= 0:
        raise ZooError(f"{png_path}: refusing to write an all-zero image (the alignratio would divide by zero)")
    ratio = np.float32(65535.0 / peak)
    quantized = np.clip(np.round(image * ratio), 0, 65535).astype(np.uint16)
    ratio_path = alignratio_path(png_path)

    def write_png(tmp: Path) -> None:
        ok, buf = cv2.imencode(".png", quantized[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise ZooError(f"{png_path}: PNG encoding failed")
        buf.tofile(tmp)

    def write_ratio(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, ratio)

    atomic_write(png_path, write_png)
    try:
        atomic_write(ratio_path, write_ratio)
    except BaseException:
        png_path.unlink(missing_ok=True)  # never a new PNG next to an old ratio (it would be scaled wrongly)
        raise
    return png_path, ratio_path


# ----------------------------------------------------------------------------------------------------------------------
# OpenEXR (through the OpenEXR package: real EXR bytes, dtype preserved) and Radiance .hdr (through OpenCV).


def write_exr(path: str | Path, image: np.ndarray, half: bool = True) -> Path:
    """Write linear or encoded float RGB as OpenEXR (float16 by default, ZIP compression)."""
    import OpenEXR

    path = Path(path)
    image = _image_to_write(path, image)
    pixels = np.ascontiguousarray(image.astype(np.float16) if half else image)

    def write(tmp: Path) -> None:
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
        with OpenEXR.File(header, {"RGB": pixels}) as f:
            try:
                f.write(str(tmp))
            except Exception as exc:  # OpenEXR reports a full disk as a RuntimeError naming the temporary file
                raise ZooError(f"{path}: write failed ({str(exc).replace(str(tmp), path.name)})") from None

    return atomic_write(path, write)


def read_exr(path: str | Path) -> np.ndarray:
    import OpenEXR

    path = Path(path)
    _check_file(path)
    with open(path, "rb") as f:
        if f.read(4) != EXR_MAGIC:
            raise ZooError(f"{path}: not an OpenEXR file (bad magic bytes)")
    _check_header_size(path)
    try:
        with native_messages_captured(path), OpenEXR.File(str(path)) as f:
            channels = f.channels()
            if "RGB" in channels:
                image = channels["RGB"].pixels
            elif "RGBA" in channels:  # alpha is coverage, not radiance: use the colour channels
                image = channels["RGBA"].pixels[..., :3]
            elif all(c in channels for c in "RGB"):
                image = np.stack([channels[c].pixels for c in "RGB"], axis=-1)
            else:
                raise ZooError(f"{path}: EXR has no R, G, B channels (found {', '.join(sorted(channels))})")
            image = np.array(image, dtype=np.float32)
    except ZooError:
        raise
    except Exception as exc:
        raise ZooError(f"{path}: cannot read EXR: corrupt or truncated ({type(exc).__name__}: {exc})") from None
    if image.ndim != 3 or image.shape[2] != 3:
        raise ZooError(f"{path}: expected 3 colour channels, got array of shape {image.shape}")
    return image


def write_hdr(path: str | Path, image: np.ndarray) -> Path:
    """Write Radiance RGBE (about 0.6 % relative precision)."""
    path = Path(path)
    image = _image_to_write(path, image)
    bgr = np.ascontiguousarray(np.maximum(image, 0)[..., ::-1])

    def write(tmp: Path) -> None:
        ok, buf = cv2.imencode(".hdr", bgr)
        if not ok:
            raise ZooError(f"{path}: Radiance HDR encoding failed")
        buf.tofile(tmp)

    return atomic_write(path, write)


def read_hdr_image(path: str | Path, negatives: str = "refuse") -> np.ndarray:
    """Read ``.exr`` or ``.hdr`` as float32 RGB, refusing NaN/inf; negative values are refused or clamped to 0
    (``negatives``, see ``handle_negatives``)."""
    return read_hdr_counted(path, negatives)[0]


def read_hdr_counted(path: str | Path, negatives: str = "refuse") -> tuple[np.ndarray, int]:
    """``read_hdr_image`` that also returns how many values were negative in the file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".exr":
        image = read_exr(path)
    elif suffix == ".hdr":
        _check_file(path)
        with open(path, "rb") as f:
            head = f.read(10)
        if not (head.startswith(b"#?RADIANCE") or head.startswith(b"#?RGBE")):
            raise ZooError(f"{path}: not a Radiance HDR file (missing #?RADIANCE header)")
        image = _to_rgb(_decode(path, cv2.IMREAD_UNCHANGED), path).astype(np.float32)
    else:
        raise ZooError(f"{path}: unsupported HDR format {suffix!r}; expected .exr or .hdr")
    return handle_negatives(image, path, negatives)


def write_png8(path: str | Path, image: np.ndarray) -> Path:
    """Write float RGB in [0, 1] as an 8-bit PNG (previews, LDR inputs)."""
    path = Path(path)
    quantized = np.clip(np.round(np.asarray(image, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)

    def write(tmp: Path) -> None:
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(quantized[..., ::-1]))
        if not ok:
            raise ZooError(f"{path}: PNG encoding failed")
        buf.tofile(tmp)

    return atomic_write(path, write)
