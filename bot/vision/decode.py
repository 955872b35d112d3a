"""Safe decoding of untrusted picture bytes into RGB pixel arrays.

The format comes from the magic bytes alone and the declared size is checked
against the limits from the header alone, before Pillow allocates anything.
Every failure becomes one of the `bot.errors.ImageError` subclasses, with a
message that can be shown to the user who posted the picture.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image

from bot.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from bot.phrases import Phrase

log = logging.getLogger(__name__)

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
"""Pillow format names that `sniff_format` returns and `decode_image` reads."""

_SUPPORTED_HINT = "send a JPEG, PNG, WebP, GIF or BMP picture"


@dataclass(frozen=True)
class DecodeLimits:
    """Limits applied to untrusted pictures, and the size to decode them at."""

    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000
    """Declared width × height, checked before decoding."""
    max_side: int = 20_000
    """Either declared dimension, checked before decoding."""
    target_side: int | None = 1024
    """If set, the longer side of the result is at most this (aspect ratio kept)."""

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_pixels, self.max_side) < 1:
            raise ValueError(f"decode limits must be positive: {self}")
        if self.target_side is not None and self.target_side < 1:
            raise ValueError(f"target_side must be positive or None, not {self.target_side}")


DEFAULT_LIMITS = DecodeLimits()


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """A decoded picture: RGB pixels plus what is needed to map them back to the original."""

    pixels: np.ndarray
    """H×W×3 uint8, RGB, C-contiguous and writable; transparency is composited on white."""
    format: str
    """One of `SUPPORTED_FORMATS`."""
    original_size: tuple[int, int]
    """(width, height) as declared, after EXIF orientation."""
    scale: float
    """Pixel size / original size (1.0 if not downscaled): divide coordinates by it."""


def sniff_format(data: bytes) -> str | None:
    """The supported format the magic bytes announce ("JPEG", "PNG", ...), else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    # "BM" alone is too weak (any text starting "BM..."): also require one of
    # the DIB header sizes Pillow reads.
    if data.startswith(b"BM") and len(data) >= 18 and _u32le(data, 14) in _BMP_HEADER_SIZES:
        return "BMP"
    return None


def decode_image(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> DecodedImage:
    """Decode untrusted picture bytes to RGB within `limits`; raises an `ImageError` subclass."""
    if not data:
        raise EmptyImageError("the picture is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(
            "the file is too large ({size}; the limit is {limit})",
            size=_megabytes(len(data)),
            limit=_megabytes(limits.max_bytes),
        )
    image_format = sniff_format(data)
    if image_format is None:
        raise UnsupportedImageError(_describe_unsupported(data))
    declared = _read_declared_size(data, image_format)
    if declared is not None:
        _check_size(declared, limits)
    if image_format == "PNG":
        data = _checked_png(data)
    try:
        return _decode(data, image_format, limits)
    except ImageError:
        raise
    # The warning only arrives as an exception if the process turned warnings
    # into errors; `_check_size` already refuses whatever would trigger it.
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as exc:
        raise ImageTooLargeError("the picture is too large to decode") from exc
    except _DECODER_ERRORS as exc:
        raise _corrupt(image_format, exc) from exc
    except Exception as exc:
        log.warning("unexpected error decoding a %s picture", image_format, exc_info=True)
        raise _corrupt(image_format, exc) from exc


def encode_png(pixels: np.ndarray, *, compress_level: int = 1) -> bytes:
    """Encode an H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA) uint8 array as PNG bytes.

    Level 1 is about five times faster than Pillow's default 6 for 30% more bytes: the bot
    encodes a crop of every face it answers, on the recognition workers.
    """
    _check_pixels(pixels)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, "PNG", compress_level=compress_level)
    return buffer.getvalue()


def encode_jpeg(pixels: np.ndarray, *, quality: int = 90) -> bytes:
    """Encode an H×W or H×W×3 uint8 array as JPEG bytes (for pictures shown, not stored)."""
    _check_pixels(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        raise ValueError("JPEG has no transparency: expected H×W or H×W×3")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _check_pixels(pixels: np.ndarray) -> None:
    shape_ok = pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))
    if pixels.dtype != np.uint8 or not shape_ok or pixels.size == 0:
        raise ValueError(
            "expected a non-empty H×W, H×W×3 or H×W×4 uint8 array, "
            f"not {pixels.dtype} {pixels.shape}"
        )


# -- decoding -------------------------------------------------------------------

# What Pillow and the codecs it wraps raise on damaged input
# (UnidentifiedImageError is an OSError; zlib and struct errors usually arrive
# wrapped, but not always; some plugins check a malformed file with `assert`).
_DECODER_ERRORS = (
    AssertionError,
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    IndexError,
    KeyError,
    TypeError,
)

# Pillow's bilinear filter widens with the scale factor (so it does not alias)
# and costs a third of Lanczos; big factors are first reduced by an integer
# factor (`Image.reduce`) down to twice the target.
_RESAMPLE = Image.Resampling.BILINEAR
_REDUCING_GAP = 2.0

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
_KNOWN_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr"})

_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _decode(data: bytes, image_format: str, limits: DecodeLimits) -> DecodedImage:
    with Image.open(io.BytesIO(data), formats=[image_format]) as img:
        # Pillow's reading of the header is authoritative (ours may have given
        # up on an unusual but valid header).
        _check_size(img.size, limits)
        width, height = img.size
        wanted = _fit_size(img.size, limits.target_side)
        draft_box = None
        if image_format == "JPEG" and wanted != img.size:
            # DCT-domain scaling by 1/2, 1/4 or 1/8, never below `wanted`.
            drafted = img.draft("RGB", wanted)
            if drafted is not None:
                draft_box = drafted[1]
        img.load()
        orientation = _exif_orientation(img)
        rgb = _to_rgb(img)
        if rgb.size != wanted:
            rgb = rgb.resize(wanted, _RESAMPLE, box=draft_box, reducing_gap=_REDUCING_GAP)
        # Rotating after downscaling gives the same pixels for less work.
        transpose = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
        if transpose is not None:
            rgb = rgb.transpose(transpose)
        pixels = np.array(rgb, dtype=np.uint8)  # a copy: writable, owns its memory
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.size == 0:
        raise CorruptImageError("the {format} picture decoded to no pixels", format=image_format)
    original_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    # Exact on the longer side, which `_fit_size` sets to the target.
    scale = max(pixels.shape[:2]) / max(original_size)
    return DecodedImage(pixels, image_format, original_size, scale)


def _fit_size(size: tuple[int, int], target_side: int | None) -> tuple[int, int]:
    width, height = size
    longer = max(width, height)
    if target_side is None or longer <= target_side:
        return size
    factor = target_side / longer
    return max(1, round(width * factor)), max(1, round(height * factor))


def _exif_orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(ExifTags.Base.Orientation)
    # Orientation is optional metadata: a damaged EXIF block (which can fail in
    # many ways inside Pillow's TIFF parser) must not cost the whole picture.
    except Exception:
        log.debug("ignoring unreadable EXIF data", exc_info=True)
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE_FOR_ORIENTATION else 1


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any mode the decoders produce, as RGB with transparency composited on white."""
    if img.mode in _SIXTEEN_BIT_MODES:
        img = _sixteen_bit_to_grey(img)
    elif img.mode == "F":
        values = np.nan_to_num(np.asarray(img), nan=0.0, posinf=255.0, neginf=0.0)
        img = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    elif img.mode not in _KNOWN_MODES:
        raise UnsupportedImageError(
            "unsupported colour mode {mode} ({hint})", mode=img.mode, hint=Phrase(_SUPPORTED_HINT)
        )
    if img.has_transparency_data:
        return _flatten_on_white(img if img.mode == "RGBA" else img.convert("RGBA"))
    return img if img.mode == "RGB" else img.convert("RGB")


def _sixteen_bit_to_grey(img: Image.Image) -> Image.Image:
    """16-bit grey to 8 bits as round(v / 257), so 65535 -> 255 (Pillow's convert clips)."""
    values = np.clip(np.asarray(img), 0, 65535).astype(np.uint32)
    grey = Image.fromarray(((values + 128) // 257).astype(np.uint8))
    key = img.info.get("transparency")
    if isinstance(key, int):
        alpha = Image.fromarray(np.where(values == key, 0, 255).astype(np.uint8))
        return Image.merge("LA", (grey, alpha))
    return grey


def _flatten_on_white(rgba: Image.Image) -> Image.Image:
    """Composite on white; done before resizing, which then has three channels, not four."""
    alpha = rgba.getchannel("A")
    if alpha.getextrema() == (255, 255):  # common for screenshots, and much cheaper
        return rgba.convert("RGB")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=alpha)
    return background


def _check_size(size: tuple[int, int], limits: DecodeLimits) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise CorruptImageError(
            "the picture declares an empty size ({width}×{height} pixels)",
            width=width,
            height=height,
        )
    if width > limits.max_side or height > limits.max_side:
        raise ImageTooLargeError(
            "the picture is too large ({width}×{height} pixels; the limit is {side} pixels a side)",
            width=width,
            height=height,
            side=limits.max_side,
        )
    # Pillow's bomb limit is global: honour it (what would be a warning there is
    # an error here) rather than change it under other threads.
    max_pixels = limits.max_pixels
    if Image.MAX_IMAGE_PIXELS is not None:
        max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS)
    if width * height > max_pixels:
        raise ImageTooLargeError(
            "the picture is too large ({width}×{height} pixels; the limit is {limit} megapixels)",
            width=width,
            height=height,
            limit=f"{max_pixels / 1e6:g}",
        )


def _corrupt(image_format: str, exc: BaseException) -> CorruptImageError:
    if "truncated" in str(exc).lower():
        return CorruptImageError(
            "the {format} picture is truncated (incomplete file?)", format=image_format
        )
    return CorruptImageError(
        "the {format} picture is damaged and cannot be decoded", format=image_format
    )


# -- declared sizes, read from headers without decoding ----------------------------

_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE_MARKERS = frozenset({0x00, 0x01, *range(0xD0, 0xD9)})


def _u32le(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _read_declared_size(data: bytes, image_format: str) -> tuple[int, int] | None:
    """(width, height) from the header, or None if it is unreadable (Pillow then judges)."""
    try:
        return _HEADER_READERS[image_format](data)
    except (struct.error, IndexError):
        return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", data, 16)
    return width, height


def _gif_size(data: bytes) -> tuple[int, int] | None:
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    # Walk to the first frame the way Pillow does, quirks included (it skips
    # unknown bytes between blocks), since Pillow grows the canvas to hold it.
    try:
        while data[pos] != 0x3B:  # trailer
            block = data[pos]
            pos += 1
            if block == 0x2C:  # image descriptor
                left, top, frame_width, frame_height = struct.unpack_from("<HHHH", data, pos)
                return max(width, left + frame_width), max(height, top + frame_height)
            if block == 0x21:  # extension: a label, then sub-blocks
                pos = _skip_gif_extension(data, pos)
    except (struct.error, IndexError):
        pass
    return width, height


def _skip_gif_extension(data: bytes, pos: int) -> int:
    label = data[pos]
    first, pos = _gif_sub_block(data, pos + 1)
    if label == 0xFE:  # comment: sub-blocks up to an empty one
        while first:
            first, pos = _gif_sub_block(data, pos)
        return pos
    if label == 0xFF and first is not None and first.startswith(b"NETSCAPE2.0"):
        _, pos = _gif_sub_block(data, pos)
    # Pillow then reads sub-blocks up to an empty one, even if the first was.
    block: bytes | None = b"-"
    while block:
        block, pos = _gif_sub_block(data, pos)
    return pos


def _gif_sub_block(data: bytes, pos: int) -> tuple[bytes | None, int]:
    """The sub-block at `pos` (None for the empty terminator or the end) and what follows."""
    if pos >= len(data):
        return None, pos
    size = data[pos]
    if not size:
        return None, pos + 1
    return data[pos + 1 : pos + 1 + size], pos + 1 + size


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if _u32le(data, 14) == 12:  # OS/2 1.x: unsigned 16-bit sizes
        width, height = struct.unpack_from("<HH", data, 18)
        return width, height
    width, height = struct.unpack_from("<ii", data, 18)
    return width, abs(height)  # a negative height means rows stored top-down


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = _u32le(data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # Like Pillow: walk the segments up to the first scan, skipping junk between
    # them (find() keeps that fast), and let a later frame header win.
    size = None
    pos = 2
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return size
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker in _JPEG_STANDALONE_MARKERS:
            pos += 2
        elif marker in (0xD9, 0xDA):  # end of image, start of scan
            return size
        else:
            if marker in _JPEG_SOF_MARKERS:
                height, width = struct.unpack_from(">HH", data, pos + 5)
                size = (width, height)
            (length,) = struct.unpack_from(">H", data, pos + 2)
            pos += 2 + length


_HEADER_READERS: dict[str, Callable[[bytes], tuple[int, int] | None]] = {
    "JPEG": _jpeg_size,
    "PNG": _png_size,
    "WEBP": _webp_size,
    "GIF": _gif_size,
    "BMP": _bmp_size,
}


_PNG_METADATA_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"iCCP"})
"""Text and colour-profile chunks: never used here, and Pillow refuses large ones outright."""


def _checked_png(data: bytes) -> bytes:
    """Verify the checksums of critical PNG chunks (Pillow does not for the image data) and
    drop the text and colour-profile chunks, so a picture carrying a huge one still decodes.

    As in libpng, damaged ancillary chunks are not fatal, and a file that stops
    at a chunk boundary is left to Pillow to judge.
    """
    view = memoryview(data)
    pos = 8
    dropped: list[tuple[int, int]] = []
    while pos + 12 <= len(data):
        length, chunk_type = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise CorruptImageError("the PNG picture is truncated (incomplete file?)")
        is_critical = not chunk_type[0] & 0x20  # upper-case first letter
        if is_critical and zlib.crc32(view[pos + 4 : end - 4]) != int.from_bytes(
            view[end - 4 : end], "big"
        ):
            raise CorruptImageError("the PNG picture is damaged (a checksum does not match)")
        if chunk_type in _PNG_METADATA_CHUNKS:
            dropped.append((pos, end))
        if chunk_type == b"IEND":
            break
        pos = end
    if not dropped:
        return data
    kept, start = [], 0
    for begin, end in dropped:
        kept.append(view[start:begin])
        start = end
    kept.append(view[start:])
    return b"".join(kept)


# -- saying what unsupported bytes are -------------------------------------------------

# (magic bytes, offset, what it looks like, whether it is a picture format)
_KNOWN_SIGNATURES: tuple[tuple[bytes, int, str, bool], ...] = (
    (b"%PDF-", 0, "a PDF document", False),
    (b"PK\x03\x04", 0, "a ZIP archive (or an Office document)", False),
    (b"PK\x05\x06", 0, "a ZIP archive", False),
    (b"\x1f\x8b", 0, "a gzip archive", False),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive", False),
    (b"Rar!\x1a\x07", 0, "a RAR archive", False),
    (b"II*\x00", 0, "a TIFF picture", True),
    (b"MM\x00*", 0, "a TIFF picture", True),
    (b"\x00\x00\x01\x00", 0, "an ICO icon", True),
    (b"\x00\x00\x02\x00", 0, "a CUR cursor", True),
    (b"8BPS", 0, "a Photoshop document", True),
    (b"\xff\x0a", 0, "a JPEG XL picture", True),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "a JPEG XL picture", True),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "a JPEG 2000 picture", True),
    (b"\xff\x4f\xff\x51", 0, "a JPEG 2000 picture", True),
    (b"qoif", 0, "a QOI picture", True),
    (b"AVI ", 8, "an AVI video", False),
    (b"WAVE", 8, "a WAV sound file", False),
    (b"ftypavi", 4, "an AVIF picture", True),
    (b"ftyphei", 4, "a HEIC picture", True),
    (b"ftypmif1", 4, "a HEIC picture", True),
    (b"ftyp", 4, "an MP4/QuickTime video", False),
    (b"\x1a\x45\xdf\xa3", 0, "a WebM/Matroska video", False),
    (b"OggS", 0, "an Ogg sound or video file", False),
    (b"ID3", 0, "an MP3 sound file", False),
    (b"fLaC", 0, "a FLAC sound file", False),
    (b"\x7fELF", 0, "a program", False),
    (b"MZ", 0, "a Windows program", False),
)


_SVG = "an SVG drawing"
_HTML = "a web page (HTML)"
_XML = "an XML document"
_TEXT = "text"
_ODD_BMP = "an unusual BMP variant"
KINDS_OF_FILE = (
    *dict.fromkeys(what for _, _, what, _ in _KNOWN_SIGNATURES),
    *(_SVG, _HTML, _XML, _TEXT, _ODD_BMP),
)
"""Every kind of file an unsupported upload is said to look like (each is translated): the
signatures' and those told from the first bytes' content."""


def _describe_unsupported(data: bytes) -> Phrase:
    """A short sentence for the user saying what bytes that are no supported picture look like
    (a :class:`Phrase`, so the kind of file is translated with it)."""
    for magic, offset, what, is_picture in _KNOWN_SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return _unsupported_message(what, is_picture)
    head = data[:1024]
    markup = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in markup:
        return _unsupported_message(_SVG, True)
    if markup.startswith(b"<!doctype html") or b"<html" in markup:
        return _unsupported_message(_HTML, False)
    if markup.startswith(b"<?xml"):
        return _unsupported_message(_XML, False)
    if _looks_like_text(head):
        return _unsupported_message(_TEXT, False)
    if data.startswith(b"BM"):  # but not with a DIB header that Pillow reads
        return _unsupported_message(_ODD_BMP, True)
    return Phrase(
        "unsupported format: not a picture this bot can read ({hint})",
        {"hint": Phrase(_SUPPORTED_HINT)},
    )


def _unsupported_message(what: str, is_picture: bool) -> Phrase:
    if is_picture:
        return Phrase(
            "unsupported picture format: looks like {what} ({hint})",
            {"what": Phrase(what), "hint": Phrase(_SUPPORTED_HINT)},
        )
    return Phrase("not a picture: looks like {what}", {"what": Phrase(what)})


def _looks_like_text(head: bytes) -> bool:
    """True for UTF-8 (or ASCII) text with no control characters but whitespace."""
    decoded = head.decode("utf-8", errors="replace")
    # A multi-byte character may be cut at the end of the sample.
    if decoded.count("\ufffd") > 3:
        return False
    return all(ch.isprintable() or ch in "\t\r\n\f\ufffd" for ch in decoded)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
