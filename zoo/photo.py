"""Reading users' photos for ``zoo predict``: what a camera or phone writes, shown the way a viewer shows it.

- **EXIF orientation** is applied (a phone's portrait shot is stored sideways with tag 6), so outputs come out upright,
  and the applied tag is recorded (``Photo.orientation``) and logged.
- **Colour profiles**: the models were trained on sRGB. A file whose ICC profile is not sRGB (Display P3, Adobe RGB,
  ...) is read as if it were sRGB, with a warning naming the profile (converting gamuts would be a guess about what
  the model should see; saying so is not).
- **Bit depth**: 8-bit files are scaled by 1/255, 16-bit PNG/TIFF by 1/65535, to [0, 1].
- **HEIC/HEIF/AVIF**: decoded through Pillow (AVIF built in since Pillow 11.3; HEIC with the optional extra
  ``pip install hdr-zoo[photos]``, i.e. pillow-heif); without a decoder, a one-line error says what to install.

Datasets do not use this module: their 8-bit inputs (NTIRE ``_medium``) are read by ``zoo.io.read_ldr``, strictly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo import io
from zoo.errors import ZooError

log = logging.getLogger(__name__)

PILLOW_SUFFIXES = (".heic", ".heif", ".avif")
PHOTO_SUFFIXES = io.LDR_SUFFIXES + PILLOW_SUFFIXES
ORIENTATION_TAG = 0x0112
# EXIF orientation → what makes the stored pixels upright (the tag says where row 0 / column 0 of the stored image are)
ORIENT = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, k=-1),  # stored rotated 90° counter-clockwise: turn it clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # mirrored along the anti-diagonal
    8: lambda a: np.rot90(a, k=1),  # stored rotated 90° clockwise: turn it counter-clockwise
}


@dataclass(frozen=True)
class Photo:
    image: np.ndarray  # H×W×3 float32 sRGB in [0, 1], upright
    orientation: int  # the EXIF orientation tag that was applied (1: none)
    bit_depth: int  # 8 or 16
    profile: str  # ICC profile description, "" when the file declares none


def read_photo(path: str | Path) -> Photo:
    """Read a photo (PNG/JPEG/TIFF/BMP, 8 or 16 bit; HEIC/HEIF/AVIF through Pillow) upright, as float32 RGB in [0, 1].
    Any failure is a one-line ``ZooError`` naming the file."""
    path = Path(path)
    if path.suffix.lower() in PILLOW_SUFFIXES:
        pixels, (orientation, profile) = _decode_with_pillow(path)
    else:
        pixels = io._decode(path, -1)  # cv2.IMREAD_UNCHANGED: the stored pixels, bit depth kept, EXIF not applied
        pixels = io._to_rgb(pixels, path) if pixels.ndim == 3 and pixels.shape[2] == 3 else _rgb_of(pixels, path)
        orientation, profile = _header_metadata(path)
    if pixels.dtype == np.uint8:
        bit_depth, image = 8, pixels.astype(np.float32) / 255.0
    elif pixels.dtype == np.uint16:
        bit_depth, image = 16, pixels.astype(np.float32) / 65535.0
    else:
        raise ZooError(f"{path}: expected an 8- or 16-bit integer photo, got {pixels.dtype} samples")
    if orientation in ORIENT:
        image = np.ascontiguousarray(ORIENT[orientation](image))
        log.info("%s: applied EXIF orientation %d", path, orientation)
    if profile and "srgb" not in profile.lower():
        log.warning(
            "%s: declares colour profile %r; the models expect sRGB, so its values are read as sRGB "
            "(colours may shift)",
            path,
            profile,
        )
    return Photo(image, orientation, bit_depth, profile)


def _rgb_of(pixels: np.ndarray, path: Path) -> np.ndarray:
    """RGBA (4 channels) → RGB; anything else is refused with the channel count."""
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        log.warning("%s: ignoring the alpha channel", path)
        return np.ascontiguousarray(pixels[..., 2::-1])
    return io._to_rgb(pixels, path)  # raises, naming what was found


def _open_pillow(path: Path):
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() in (".heic", ".heif"):
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            raise ZooError(
                f"{path}: reading HEIC/HEIF needs the optional extra: pip install 'hdr-zoo[photos]' " "(pillow-heif)"
            ) from None
        register_heif_opener()
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ZooError(f"{path}: cannot decode image ({exc})") from None


def _decode_with_pillow(path: Path) -> tuple[np.ndarray, tuple[int, str]]:
    """(RGB pixels, metadata) from one open of the file."""
    io._check_file(path)
    with _open_pillow(path) as img:
        if img.width * img.height > io.MAX_PIXELS:
            raise ZooError(f"{path}: header says {img.width}x{img.height} pixels; expected at most {io.MAX_PIXELS}")
        try:
            return np.asarray(img.convert("RGB")), _metadata(img)
        except (OSError, ValueError) as exc:
            raise ZooError(f"{path}: cannot decode image ({exc})") from None


def _header_metadata(path: Path) -> tuple[int, str]:
    """The metadata of a file OpenCV decoded, from Pillow's parse of its header (pixels are not decoded again)."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError):
        return 1, ""  # a format Pillow does not parse: OpenCV decoded it, there is no metadata to apply
    with img:
        return _metadata(img)


def _metadata(img) -> tuple[int, str]:
    """(EXIF orientation tag or 1, ICC profile description or "") of an open Pillow image."""
    try:
        orientation = int(img.getexif().get(ORIENTATION_TAG, 1))
    except Exception:  # a malformed EXIF block: the pixels are still good
        orientation = 1
    return (orientation if orientation in ORIENT else 1), _profile_name(img.info.get("icc_profile"))


def _profile_name(icc: bytes | None) -> str:
    if not icc:
        return ""
    try:
        from io import BytesIO

        from PIL import ImageCms

        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(BytesIO(icc))).strip() or "unnamed profile"
    except Exception:
        return "unreadable ICC profile"
