"""A corpus of malformed and hostile picture files, all made here in memory (never downloaded).

Each entry says what the engine must do with it: decode (to pixels of a known size and
colours) or refuse with one specific :class:`bot.errors.ImageError` subclass whose message
contains some given words. The file names are what a user would upload: picture names,
often the wrong one, so that the bot looks at every entry.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bot.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from bot.vision.decode import DEFAULT_LIMITS

RGB = tuple[int, int, int]

RED: RGB = (255, 0, 0)
GREEN: RGB = (0, 255, 0)
BLUE: RGB = (0, 0, 255)
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)

QUADRANT_SIZE = (64, 48)
"""(width, height) of the four-colour picture most entries start from."""
QUADRANTS = ((0.25, 0.25, RED), (0.75, 0.25, GREEN), (0.25, 0.75, BLUE), (0.75, 0.75, WHITE))
"""(x fraction, y fraction, colour) at the centre of each quadrant of that picture."""

MANY_FRAMES = 10_000
SECRET_FILE = "/etc/passwd"


@dataclass(frozen=True)
class Decodes:
    """The bytes must decode to ``size`` (width, height) RGB pixels with these colours."""

    format: str
    size: tuple[int, int]
    colours: tuple[tuple[float, float, RGB], ...] = ()
    """(x fraction, y fraction, colour) facts about the decoded pixels."""
    tolerance: int = 6
    original_size: tuple[int, int] | None = None
    """(width, height) before downscaling, if it differs from ``size``."""


@dataclass(frozen=True)
class Refused:
    """The bytes must raise ``error`` (exactly that class), its message containing ``words``."""

    error: type[ImageError]
    words: tuple[str, ...]


@dataclass(frozen=True)
class HostileInput:
    """One file of the corpus, as a user would upload it, and the outcome it must have."""

    name: str
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    expect: Decodes | Refused
    why: str


# -- building blocks ----------------------------------------------------------------------


def quadrants() -> Image.Image:
    """Red, green, blue and white quarters (top-left, top-right, bottom-left, bottom-right)."""
    width, height = QUADRANT_SIZE
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[: height // 2, : width // 2] = RED
    pixels[: height // 2, width // 2 :] = GREEN
    pixels[height // 2 :, : width // 2] = BLUE
    pixels[height // 2 :, width // 2 :] = WHITE
    return Image.fromarray(pixels)


def halves(mode: str, left: object, right: object, size: tuple[int, int] = (40, 20)) -> Image.Image:
    """A picture in ``mode`` whose left half is ``left`` and right half ``right``."""
    img = Image.new(mode, size, right)  # type: ignore[arg-type]
    img.paste(left, (0, 0, size[0] // 2, size[1]))  # type: ignore[arg-type]
    return img


def save(img: Image.Image, image_format: str, **params: object) -> bytes:
    """``img`` encoded by Pillow."""
    buffer = io.BytesIO()
    img.save(buffer, image_format, **params)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    """One PNG chunk (with its correct CRC unless ``crc`` is given)."""
    checksum = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", checksum & 0xFFFFFFFF)


def png_file(
    width: int, height: int, *, bit_depth: int = 8, colour_type: int = 0, idat: bytes | None = None
) -> bytes:
    """A PNG with this header and image data (none if ``idat`` is None), and an IEND."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    chunks = png_chunk(b"IHDR", header)
    if idat is not None:
        chunks += png_chunk(b"IDAT", idat)
    return b"\x89PNG\r\n\x1a\n" + chunks + png_chunk(b"IEND", b"")


def zeros_idat(row_bytes: int, rows: int) -> bytes:
    """zlib-compressed scanlines of zeros (filter byte 0 each): tiny however many rows."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + row_bytes)
    return b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()


def flip_bytes(data: bytes, start: float, count: int, step: int = 7) -> bytes:
    """Invert ``count`` bytes every ``step`` bytes from ``start`` (a fraction of the length)."""
    corrupt = bytearray(data)
    first = int(len(data) * start)
    for offset in range(first, min(len(data), first + count * step), step):
        corrupt[offset] ^= 0xFF
    return bytes(corrupt)


def png_with_bad_idat_crc(data: bytes) -> bytes:
    """``data`` (a PNG) with the checksum of its first IDAT chunk wrong."""
    at = data.index(b"IDAT")
    (length,) = struct.unpack_from(">I", data, at - 4)
    end = at + 4 + length
    return data[:end] + bytes(b ^ 0xFF for b in data[end : end + 4]) + data[end + 4 :]


def png_with_garbled_idat(data: bytes) -> bytes:
    """``data`` (a PNG) with its compressed data flipped but the checksum made to match."""
    at = data.index(b"IDAT")
    (length,) = struct.unpack_from(">I", data, at - 4)
    body = flip_bytes(data[at + 4 : at + 4 + length], 0.0, length, step=1)
    return data[: at - 4] + png_chunk(b"IDAT", body) + data[at + 8 + length :]


def jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` (a baseline JPEG) with its frame header declaring another size."""
    at = data.index(b"\xff\xc0")
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]


def jpeg_without_frame(data: bytes) -> bytes:
    """``data`` (a baseline JPEG) with its frame header's marker changed into a comment."""
    at = data.index(b"\xff\xc0")
    return data[:at] + b"\xff\xfe" + data[at + 2 :]


def exif_rotated_jpeg(orientation: int) -> bytes:
    """A JPEG stored turned so that EXIF ``orientation`` shows :func:`quadrants` upright."""
    undo = {
        3: Image.Transpose.ROTATE_180,
        6: Image.Transpose.ROTATE_90,
        8: Image.Transpose.ROTATE_270,
    }
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(quadrants().transpose(undo[orientation]), "JPEG", quality=95, exif=exif.tobytes())


def gif_screen(width: int, height: int) -> bytes:
    """A GIF89a header and logical screen with a two-colour table (black, white)."""
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + bytes(3) + b"\xff" * 3


def gif_frames(count: int) -> bytes:
    """A looping GIF of ``count`` one-pixel frames: black first, then white ones."""
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"

    def frame(index: int) -> bytes:
        # LZW with 2-bit codes, read 3 bits at a time: clear (4), the index, end (5).
        codes = 4 | (index << 3) | (5 << 6)
        control = b"\x21\xf9\x04\x00\x01\x00\x00\x00"  # graphic control: 1/100 s
        descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
        return control + descriptor + b"\x02\x02" + struct.pack("<H", codes) + b"\x00"

    white = frame(1)
    return gif_screen(1, 1) + loop + frame(0) + white * (count - 1) + b"\x3b"


def gif_growing_frame(width: int, height: int) -> bytes:
    """A 1×1 GIF whose first frame claims ``width``×``height`` (Pillow grows the canvas)."""
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return gif_screen(1, 1) + descriptor + b"\x02\x02\x44\x01\x00\x3b"


def webp_vp8x(width: int, height: int) -> bytes:
    """A WebP extended header declaring a ``width``×``height`` canvas, and nothing else."""
    body = bytes(4) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def bmp_header(width: int, height: int) -> bytes:
    """A 24-bit BMP header declaring ``width``×``height`` pixels, with no pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def zip_archive() -> bytes:
    """A ZIP holding a PNG (as if someone zipped their pictures)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("picture.png", save(quadrants(), "PNG"))
    return buffer.getvalue()


def pdf_document() -> bytes:
    """A one-page PDF (hand-written; the offsets in its table need not be exact for this)."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


SVG_XXE = (
    '<?xml version="1.0"?>\n'
    f'<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file://{SECRET_FILE}">]>\n'
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
    "<text>&xxe;</text></svg>\n"
).encode()
SVG_SCRIPT = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48" onload="alert(1)">'
    b"<script>fetch('http://169.254.169.254/latest/meta-data/')</script>"
    b'<image href="http://127.0.0.1:9108/metrics"/></svg>'
)
HTML_PAGE = b"<!DOCTYPE html>\n<html><body><img src=x onerror=alert(1)></body></html>\n"
TEXT = b"this is just a note about Rem, not a picture\n" * 8


# -- the corpus ---------------------------------------------------------------------------


def _entries() -> list[tuple[str, str, str, Callable[[], bytes], Decodes | Refused, str]]:
    """(name, filename, content type, maker, expected outcome, why) for every entry."""
    q = QUADRANT_SIZE
    png = save(quadrants(), "PNG")
    jpeg = save(quadrants(), "JPEG", quality=95)
    gif = save(quadrants().convert("P", palette=Image.Palette.ADAPTIVE, colors=4), "GIF")
    webp = save(quadrants(), "WEBP", lossless=True)
    bmp = save(quadrants(), "BMP")
    jpeg_ok = Decodes("JPEG", q, QUADRANTS, tolerance=24)
    corrupt = Refused(CorruptImageError, ("damaged",))
    truncated = Refused(CorruptImageError, ("truncated",))
    too_large = Refused(ImageTooLargeError, ("too large",))
    not_picture = Refused(UnsupportedImageError, ("not a picture",))

    def bad(what: str) -> Refused:
        return Refused(UnsupportedImageError, (what,))

    return [
        # Nothing at all, and sizes at the edges.
        ("zero_bytes", "empty.png", "image/png", lambda: b"", Refused(EmptyImageError, ("empty",)),
         "an upload of zero bytes"),
        ("one_by_one", "dot.png", "image/png", lambda: save(Image.new("RGB", (1, 1), RED), "PNG"),
         Decodes("PNG", (1, 1), ((0.5, 0.5, RED),)), "the smallest picture there is"),
        ("one_by_20000", "line.png", "image/png",
         lambda: png_file(20_000, 1, idat=zeros_idat(20_000, 1)),
         Decodes("PNG", (1024, 1), ((0.5, 0.5, BLACK),), original_size=(20_000, 1)),
         "a line as long as the limit allows: downscaled to 1024×1"),
        ("one_by_100000", "line.png", "image/png",
         lambda: png_file(100_000, 1, idat=zeros_idat(100_000, 1)), too_large,
         "a 100,000-pixel line: over the 20,000-pixel side limit"),
        ("over_size_cap", "huge.png", "image/png",
         lambda: png + bytes(DEFAULT_LIMITS.max_bytes + 1 - len(png)), too_large,
         "a file one byte over the 25 MB cap (a valid PNG padded at the end)"),
        # JPEG.
        ("jpeg_header_only", "photo.jpg", "image/jpeg", lambda: jpeg[:20], corrupt,
         "the first 20 bytes of a JPEG (start of image and JFIF header)"),
        ("jpeg_cut_in_half", "photo.jpg", "image/jpeg", lambda: jpeg[: len(jpeg) // 2], truncated,
         "the first half of a JPEG"),
        ("jpeg_flipped_scan_bytes", "photo.jpg", "image/jpeg", lambda: flip_bytes(jpeg, 0.7, 20),
         corrupt, "bytes inverted in the entropy-coded data (libjpeg gives up on it)"),
        ("jpeg_without_frame_header", "photo.jpg", "image/jpeg", lambda: jpeg_without_frame(jpeg),
         corrupt, "a JPEG whose frame header (the size and components) is missing"),
        ("jpeg_declares_60000_square", "photo.jpg", "image/jpeg",
         lambda: jpeg_with_size(jpeg, 60_000, 60_000), too_large,
         "a JPEG whose frame header declares 60,000×60,000 pixels"),
        ("jpeg_declares_zero_height", "photo.jpg", "image/jpeg",
         lambda: jpeg_with_size(jpeg, 64, 0), Refused(CorruptImageError, ("empty size",)),
         "a JPEG whose frame header declares no rows"),
        ("jpeg_cmyk", "print.jpg", "image/jpeg",
         lambda: save(halves("CMYK", (0, 255, 255, 0), (255, 255, 0, 0)), "JPEG", quality=95),
         Decodes("JPEG", (40, 20), ((0.25, 0.5, RED), (0.75, 0.5, BLUE)), tolerance=24),
         "a CMYK JPEG (as printers make): red and blue halves"),
        ("jpeg_exif_orientation_3", "turned.jpg", "image/jpeg", lambda: exif_rotated_jpeg(3),
         jpeg_ok, "stored upside down, EXIF orientation 3"),
        ("jpeg_exif_orientation_6", "turned.jpg", "image/jpeg", lambda: exif_rotated_jpeg(6),
         jpeg_ok, "stored turned a quarter, EXIF orientation 6"),
        ("jpeg_exif_orientation_8", "turned.jpg", "image/jpeg", lambda: exif_rotated_jpeg(8),
         jpeg_ok, "stored turned a quarter the other way, EXIF orientation 8"),
        ("jpeg_named_gif", "funny.gif", "image/gif", lambda: jpeg, jpeg_ok,
         "a JPEG named .gif: the bytes decide"),
        # PNG.
        ("png_signature_and_header_only", "shot.png", "image/png", lambda: png[:33], corrupt,
         "the PNG signature and header chunk, no image data"),
        ("png_cut_in_half", "shot.png", "image/png", lambda: png[: len(png) // 2], truncated,
         "the first half of a PNG"),
        ("png_bad_idat_crc", "shot.png", "image/png", lambda: png_with_bad_idat_crc(png),
         Refused(CorruptImageError, ("checksum",)), "image data whose CRC does not match"),
        ("png_garbled_idat", "shot.png", "image/png", lambda: png_with_garbled_idat(png), corrupt,
         "compressed image data inverted, with a CRC that matches it"),
        ("png_declares_zero_width", "shot.png", "image/png",
         lambda: png_file(0, 16, idat=zeros_idat(0, 16)),
         Refused(CorruptImageError, ("empty size",)), "a PNG header with no columns"),
        ("png_bomb_20000_square", "bomb.png", "image/png",
         lambda: png_file(20_000, 20_000, bit_depth=1, idat=zeros_idat(2_500, 20_000)), too_large,
         "real zlib data for 20,000×20,000 pixels (400 megapixels) in about 50 KB"),
        ("png_zeros_25_megapixels", "dark.png", "image/png",
         lambda: png_file(5_000, 5_000, idat=zeros_idat(5_000, 5_000)),
         Decodes("PNG", (1024, 1024), ((0.5, 0.5, BLACK),), original_size=(5_000, 5_000)),
         "25 megapixels of zeros in a few KB, under the limit: decodes, downscaled"),
        ("png_16_bit_grey", "deep.png", "image/png",
         lambda: save(Image.fromarray(np.full((10, 20), 32_896, np.uint16)), "PNG"),
         Decodes("PNG", (20, 10), ((0.5, 0.5, (128, 128, 128)),), tolerance=0),
         "16-bit greyscale: 32896 becomes 128"),
        ("png_palette_transparent", "sticker.png", "image/png",
         lambda: save(halves("P", 0, 1).copy(), "PNG", transparency=0),
         Decodes("PNG", (40, 20), ((0.25, 0.5, WHITE), (0.75, 0.5, BLACK)), tolerance=0),
         "a palette picture whose first colour is transparent: composited on white"),
        ("png_grey_alpha", "sticker.png", "image/png",
         lambda: save(halves("LA", (0, 0), (90, 255)), "PNG"),
         Decodes("PNG", (40, 20), ((0.25, 0.5, WHITE), (0.75, 0.5, (90, 90, 90))), tolerance=0),
         "grey with alpha (LA): the transparent half becomes white"),
        ("png_named_jpg", "photo.jpg", "image/jpeg", lambda: png,
         Decodes("PNG", q, QUADRANTS, tolerance=0), "a PNG named .jpg: the bytes decide"),
        ("png_trailing_garbage", "shot.png", "image/png", lambda: png + b"<?php system($_GET[c]);",
         Decodes("PNG", q, QUADRANTS, tolerance=0), "a PHP snippet after IEND: ignored"),
        ("png_ztxt_bomb", "notes.png", "image/png",
         lambda: png[:33] + png_chunk(b"zTXt", b"c\x00\x00" + zlib.compress(bytes(64 << 20), 9))
         + png[33:],
         Decodes("PNG", q, QUADRANTS, tolerance=0),
         "a compressed text chunk that inflates to 64 MB: an ancillary chunk, skipped"),
        ("apng_1000_frames", "moving.png", "image/png",
         lambda: save(Image.new("RGB", (8, 8), RED), "PNG", save_all=True, append_images=[
             Image.new("RGB", (8, 8), (0, 0, i % 256)) for i in range(999)]),
         Decodes("PNG", (8, 8), ((0.5, 0.5, RED),), tolerance=0),
         "an animated PNG of 1000 frames: the first frame only"),
        # GIF.
        ("gif_header_only", "anim.gif", "image/gif", lambda: gif_screen(64, 48), corrupt,
         "a GIF signature and logical screen, with no frame"),
        ("gif_cut_in_half", "anim.gif", "image/gif", lambda: gif[: len(gif) // 2], truncated,
         "the first half of a GIF"),
        ("gif_flipped_bytes", "anim.gif", "image/gif", lambda: flip_bytes(gif, 0.5, 20), corrupt,
         "bytes inverted in the LZW data"),
        ("gif_bomb_65535_square", "bomb.gif", "image/gif", lambda: gif_screen(65_535, 65_535),
         too_large, "a header-only GIF whose screen is 65,535×65,535"),
        ("gif_frame_grows_canvas", "bomb.gif", "image/gif",
         lambda: gif_growing_frame(30_000, 30_000), too_large,
         "a 1×1 GIF whose first frame claims 30,000×30,000 (Pillow grows the canvas)"),
        ("gif_10000_frames", "long.gif", "image/gif", lambda: gif_frames(MANY_FRAMES),
         Decodes("GIF", (1, 1), ((0.5, 0.5, BLACK),), tolerance=0),
         "10,000 one-pixel frames: only the first (black) is decoded"),
        ("gif_transparent", "sticker.gif", "image/gif",
         lambda: save(halves("P", 0, 1), "GIF", transparency=0),
         Decodes("GIF", (40, 20), ((0.25, 0.5, WHITE), (0.75, 0.5, BLACK)), tolerance=0),
         "a GIF whose left half is transparent"),
        ("gif_named_png", "still.png", "image/png", lambda: gif,
         Decodes("GIF", q, QUADRANTS, tolerance=0), "a GIF named .png: the bytes decide"),
        # WebP.
        ("webp_header_only", "pic.webp", "image/webp", lambda: webp[:20], corrupt,
         "RIFF and WEBP signatures and a chunk header, no data"),
        ("webp_cut_in_half", "pic.webp", "image/webp", lambda: webp[: len(webp) // 2], corrupt,
         "the first half of a lossless WebP"),
        ("webp_flipped_bytes", "pic.webp", "image/webp", lambda: flip_bytes(webp, 0.3, 30),
         corrupt, "bytes inverted in the lossless bitstream"),
        ("webp_declares_16384_square", "bomb.webp", "image/webp", lambda: webp_vp8x(16_384, 16_384),
         too_large, "an extended WebP header declaring a 16,384×16,384 canvas"),
        ("webp_transparent", "sticker.webp", "image/webp",
         lambda: save(halves("RGBA", (0, 0, 0, 0), (*RED, 255)), "WEBP", lossless=True),
         Decodes("WEBP", (40, 20), ((0.25, 0.5, WHITE), (0.75, 0.5, RED)), tolerance=0),
         "a lossless WebP whose left half is transparent"),
        ("webp_named_jpg", "photo.jpg", "image/jpeg", lambda: webp,
         Decodes("WEBP", q, QUADRANTS, tolerance=0), "a WebP named .jpg"),
        # BMP.
        ("bmp_cut_in_half", "old.bmp", "image/bmp", lambda: bmp[: len(bmp) // 2], truncated,
         "the first half of a BMP"),
        ("bmp_declares_100000_square", "old.bmp", "image/bmp",
         lambda: bmp_header(100_000, 100_000), too_large,
         "a BMP header declaring 100,000×100,000 pixels"),
        # Things that are no picture, or no picture this bot reads.
        ("text_named_png", "notes.png", "image/png", lambda: TEXT, bad("text"),
         "plain text named as a picture"),
        ("html_named_jpg", "page.jpg", "image/jpeg", lambda: HTML_PAGE, bad("web page"),
         "an HTML page named as a picture"),
        ("svg_external_entity", "drawing.svg", "image/svg+xml", lambda: SVG_XXE, bad("svg"),
         f"an SVG whose external entity would read {SECRET_FILE}"),
        ("svg_script", "drawing.svg", "image/svg+xml", lambda: SVG_SCRIPT, bad("svg"),
         "an SVG with a script and links to local addresses"),
        ("pdf_named_jpg", "scan.jpg", "image/jpeg", pdf_document, bad("pdf"),
         "a PDF named as a picture"),
        ("zip_named_png", "pictures.png", "image/png", zip_archive, bad("zip"),
         "a ZIP archive holding a PNG"),
        ("gzip_named_png", "shot.png", "image/png", lambda: gzip.compress(png, mtime=0),
         bad("gzip"), "a gzip-compressed PNG"),
        ("tiff", "scan.tif", "image/tiff", lambda: save(quadrants(), "TIFF"), bad("tiff"),
         "a TIFF: a picture, but not a format the bot reads"),
        ("program_named_png", "setup.png", "image/png",
         lambda: b"\x7fELF\x02\x01\x01" + bytes(57), bad("program"), "an ELF header"),
        ("random_bytes", "noise.jpg", "image/jpeg",
         lambda: b"\x13\x37" + np.random.default_rng(5).bytes(4094), bad("unsupported"),
         "4 KB of random bytes"),
        ("not_a_picture_sniff", "data.png", "image/png", lambda: b"\x00" * 512, not_picture,
         "512 zero bytes"),
    ]  # fmt: skip


@cache
def hostile_corpus() -> tuple[HostileInput, ...]:
    """Every entry of the corpus (built once per process; the entries are immutable)."""
    corpus = tuple(
        HostileInput(name, filename, content_type, make(), expect, why)
        for name, filename, content_type, make, expect, why in _entries()
    )
    names = [entry.name for entry in corpus]
    if len(set(names)) != len(names):
        raise ValueError("corpus names must be unique")
    return corpus


def corpus_entry(name: str) -> HostileInput:
    """The entry called ``name``."""
    return next(entry for entry in hostile_corpus() if entry.name == name)


def corpus_params() -> list[Any]:
    """Every entry name, for ``pytest.mark.parametrize``."""
    return [pytest.param(name, id=name) for name, *_ in _entries()]
