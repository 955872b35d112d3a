"""Tests for bot.vision.decode. Every picture is made here, in memory."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, JpegImagePlugin

from bot.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from bot.vision.decode import (
    DecodedImage,
    DecodeLimits,
    _to_rgb,  # checked directly for modes no supported decoder yields
    decode_image,
    encode_png,
    sniff_format,
)

Colour = float | tuple[int, ...]  # what Image.new takes: a number for one band

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
COLOUR = (200, 40, 90)


# -- building pictures ----------------------------------------------------------


def save(img: Image.Image, image_format: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, image_format, **params)
    return buffer.getvalue()


def solid(colour: Colour, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def halves(left: Colour, right: Colour, size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A picture whose left half is `left` and right half is `right`."""
    img = Image.new(mode, size, right)
    img.paste(left, (0, 0, size[0] // 2, size[1]))
    return img


def to_palette(img: Image.Image) -> Image.Image:
    return img.convert("P", palette=Image.Palette.ADAPTIVE)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def handmade_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def chunk_offset(png: bytes, kind: bytes) -> int:
    """Offset of the length field of the first chunk of this kind."""
    return png.index(kind) - 4


def with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(img, "JPEG", quality=95, exif=exif.tobytes())


def flip_bytes(data: bytes, start: int, count: int) -> bytes:
    return (
        data[:start] + bytes(b ^ 0xFF for b in data[start : start + count]) + data[start + count :]
    )


def assert_valid(decoded: DecodedImage) -> None:
    pixels = decoded.pixels
    assert pixels.dtype == np.uint8
    assert pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.size > 0
    assert pixels.flags.c_contiguous


def assert_colour(pixel: np.ndarray, expected: tuple[int, int, int], tolerance: int = 0) -> None:
    difference = np.abs(pixel.astype(int) - np.array(expected))
    assert difference.max() <= tolerance, f"{pixel.tolist()} is not {expected} ± {tolerance}"


# -- formats and colours ---------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "params", "tolerance"),
    [
        ("JPEG", {"quality": 95}, 4),
        ("PNG", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("WEBP", {"quality": 90}, 4),
        ("GIF", {}, 0),
        ("BMP", {}, 0),
    ],
)
def test_solid_colour_decodes_to_rgb(image_format: str, params: dict, tolerance: int) -> None:
    decoded = decode_image(save(solid(COLOUR), image_format, **params))

    assert_valid(decoded)
    assert decoded.pixels.shape == (30, 40, 3)
    assert decoded.format == image_format
    assert decoded.original_size == (40, 30)
    assert decoded.scale == 1.0
    assert_colour(decoded.pixels[15, 20], COLOUR, tolerance)
    assert_colour(decoded.pixels[0, 0], COLOUR, tolerance)


@pytest.mark.parametrize(
    ("name", "make", "expected", "tolerance"),
    [
        ("L PNG", lambda: save(solid(77, mode="L"), "PNG"), (77, 77, 77), 0),
        ("L JPEG", lambda: save(solid(77, mode="L"), "JPEG"), (77, 77, 77), 2),
        ("L BMP", lambda: save(solid(77, mode="L"), "BMP"), (77, 77, 77), 0),
        ("1 PNG", lambda: save(solid(1, mode="1"), "PNG"), WHITE, 0),
        ("1 BMP", lambda: save(solid(0, mode="1"), "BMP"), (0, 0, 0), 0),
        ("P PNG", lambda: save(to_palette(solid(COLOUR)), "PNG"), COLOUR, 0),
        ("P BMP", lambda: save(to_palette(solid(COLOUR)), "BMP"), COLOUR, 0),
        ("CMYK JPEG", lambda: save(solid((0, 255, 255, 0), mode="CMYK"), "JPEG"), RED, 4),
        ("CMYK JPEG black", lambda: save(solid((0, 0, 0, 255), mode="CMYK"), "JPEG"), (0, 0, 0), 4),
        (
            "16-bit RGB PNG",
            lambda: handmade_png(2, 1, 16, 2, b"\x00" + b"\xff\xff\x80\x00\x00\x00" * 2),
            (255, 128, 0),
            0,
        ),
    ],
)
def test_colour_modes_become_rgb(name: str, make: Callable[[], bytes], expected, tolerance) -> None:
    decoded = decode_image(make())

    assert_valid(decoded)
    assert_colour(decoded.pixels[0, 0], expected, tolerance)


@pytest.mark.parametrize(("value", "expected"), [(65535, 255), (32768, 128), (257, 1), (0, 0)])
def test_16_bit_greyscale_png_is_scaled_not_clipped(value: int, expected: int) -> None:
    png = save(Image.fromarray(np.full((4, 6), value, np.uint16)), "PNG")
    assert Image.open(io.BytesIO(png)).mode == "I;16"  # what this test is about

    decoded = decode_image(png)

    assert decoded.pixels.shape == (4, 6, 3)
    assert_colour(decoded.pixels[2, 3], (expected,) * 3)


def test_16_bit_greyscale_png_transparent_key_becomes_white() -> None:
    values = np.full((4, 6), 1000, np.uint16)
    values[:, 3:] = 40000
    png = save(Image.fromarray(values), "PNG", transparency=1000)

    decoded = decode_image(png)

    assert_colour(decoded.pixels[0, 0], WHITE)
    assert_colour(decoded.pixels[0, 5], (156,) * 3)


# -- transparency ----------------------------------------------------------------


def rgba_with_transparent_left() -> Image.Image:
    return halves((0, 0, 0, 0), (*RED, 255), (16, 8), mode="RGBA")


def palette_with_transparent_left() -> Image.Image:
    img = halves(0, 1, (16, 8), mode="P")
    img.putpalette([0, 0, 0, *RED])
    return img


@pytest.mark.parametrize(
    ("name", "make", "right"),
    [
        ("RGBA PNG", lambda: save(rgba_with_transparent_left(), "PNG"), RED),
        ("RGBA WebP", lambda: save(rgba_with_transparent_left(), "WEBP", lossless=True), RED),
        ("LA PNG", lambda: save(halves((0, 0), (60, 255), (16, 8), mode="LA"), "PNG"), (60,) * 3),
        (
            "P PNG with tRNS",
            lambda: save(palette_with_transparent_left(), "PNG", transparency=0),
            RED,
        ),
        (
            "GIF transparency",
            lambda: save(palette_with_transparent_left(), "GIF", transparency=0),
            RED,
        ),
    ],
)
def test_transparent_area_becomes_white(name: str, make: Callable[[], bytes], right) -> None:
    decoded = decode_image(make())

    assert_valid(decoded)
    assert_colour(decoded.pixels[4, 1], WHITE)
    assert_colour(decoded.pixels[4, 14], right)


def palette_alpha() -> Image.Image:
    img = Image.merge("PA", (palette_with_transparent_left(), halves(0, 255, (16, 8), mode="L")))
    img.putpalette([0, 0, 0, *RED])
    return img


# No supported decoder yields these modes today, so the converter is checked directly.
@pytest.mark.parametrize(
    ("img", "left", "right"),
    [
        (palette_alpha(), WHITE, RED),
        (halves(70_000, 32768, (16, 8), mode="I"), WHITE, (128,) * 3),
        (halves(-5.0, 99.6, (16, 8), mode="F"), (0, 0, 0), (100,) * 3),
        (halves((76, 85, 255), (255, 128, 128), (16, 8), mode="YCbCr"), RED, WHITE),
    ],
    ids=["PA", "I", "F", "YCbCr"],
)
def test_other_modes_become_rgb(img: Image.Image, left, right) -> None:
    rgb = np.asarray(_to_rgb(img))

    assert rgb.shape == (8, 16, 3)
    assert_colour(rgb[4, 1], left, tolerance=2)
    assert_colour(rgb[4, 14], right, tolerance=2)


def test_half_transparent_pixels_are_blended_with_white() -> None:
    decoded = decode_image(save(solid((*RED, 128), mode="RGBA"), "PNG"))

    assert_colour(decoded.pixels[0, 0], (255, 127, 127), tolerance=1)


def test_gif_uses_only_the_first_frame() -> None:
    frames = [to_palette(solid(colour)) for colour in (RED, BLUE, COLOUR)]
    gif = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert getattr(Image.open(io.BytesIO(gif)), "n_frames", 1) == 3

    decoded = decode_image(gif)

    assert_colour(decoded.pixels[10, 10], RED)


def test_animated_webp_uses_the_first_frame() -> None:
    frames = [solid(colour) for colour in (BLUE, RED)]
    webp = save(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)

    assert_colour(decode_image(webp).pixels[10, 10], BLUE)


# -- EXIF orientation ------------------------------------------------------------


# A 64×32 picture, red left half and blue right half, as each orientation displays it:
# (shape, colour at the top-left corner, colour at the bottom-right corner).
@pytest.mark.parametrize(
    ("orientation", "shape", "top_left", "bottom_right"),
    [
        (1, (32, 64, 3), RED, BLUE),
        (3, (32, 64, 3), BLUE, RED),
        (6, (64, 32, 3), RED, BLUE),  # rotated 90° clockwise: the left half is on top
        (8, (64, 32, 3), BLUE, RED),  # rotated 90° anticlockwise: the left half at the bottom
    ],
)
def test_exif_orientation_is_applied(orientation, shape, top_left, bottom_right) -> None:
    decoded = decode_image(with_orientation(halves(RED, BLUE, (64, 32)), orientation))

    assert decoded.pixels.shape == shape
    assert decoded.original_size == (shape[1], shape[0])
    assert_colour(decoded.pixels[2, 2], top_left, tolerance=8)
    assert_colour(decoded.pixels[-3, -3], bottom_right, tolerance=8)


def broken_exif_with_orientation(value: bytes) -> bytes:
    """A little-endian TIFF block whose one entry is Orientation with `value` (type LONG)."""
    entry = struct.pack("<HHI", 0x0112, 4, 1) + value
    return b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 1) + entry + b"\x00\x00\x00\x00"


@pytest.mark.parametrize(
    "exif",
    [
        b"Exif\x00\x00garbage that is no TIFF block",
        b"Exif\x00\x00II*\x00\xff\xff\xff\x7f",  # first directory far beyond the end
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12",  # directory cut short
        broken_exif_with_orientation(struct.pack("<I", 42)),  # no such orientation
        broken_exif_with_orientation(struct.pack("<I", 0xFFFFFFFF)),
    ],
)
@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
def test_broken_exif_is_ignored(exif: bytes, image_format: str) -> None:
    data = save(halves(RED, BLUE, (64, 32)), image_format, exif=exif)

    decoded = decode_image(data)

    assert decoded.pixels.shape == (32, 64, 3)
    assert decoded.original_size == (64, 32)


# -- downscaling -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "size", "target", "shape"),
    [
        ("JPEG", (4000, 3000), 1600, (1200, 1600, 3)),  # 1/2 DCT draft, then resized
        ("JPEG", (4000, 3000), 1000, (750, 1000, 3)),  # 1/4 draft, exactly the target
        ("JPEG", (3200, 2401), 1600, (1200, 1600, 3)),  # draft one row too tall
        ("PNG", (3000, 1000), 1024, (341, 1024, 3)),
        ("PNG", (1000, 3001), 1024, (1024, 341, 3)),
        ("WEBP", (2000, 10), 500, (2, 500, 3)),
        ("GIF", (1000, 1), 100, (1, 100, 3)),  # the short side never drops to zero
        ("BMP", (900, 600), 1600, (600, 900, 3)),  # smaller than the target: untouched
        ("JPEG", (4000, 3000), None, (3000, 4000, 3)),  # no target: full size
    ],
)
def test_downscales_to_target_side(image_format, size, target, shape) -> None:
    data = save(halves(RED, BLUE, size), image_format)

    decoded = decode_image(data, DecodeLimits(target_side=target))

    assert_valid(decoded)
    assert decoded.pixels.shape == shape
    assert decoded.original_size == size
    assert decoded.scale == pytest.approx(max(shape) / max(size))
    assert_colour(decoded.pixels[0, 0], RED, tolerance=8)
    assert_colour(decoded.pixels[-1, -1], BLUE, tolerance=8)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])  # JPEG: drafted at 1/4, then resized
def test_scale_maps_coordinates_back_to_the_original(image_format: str) -> None:
    img = Image.new("RGB", (3000, 2000), WHITE)
    img.paste(RED, (1200, 800, 1500, 1100))  # a 300×300 square at (1200, 800)

    decoded = decode_image(save(img, image_format), DecodeLimits(target_side=600))

    rows, cols = np.nonzero(decoded.pixels[:, :, 1] < 128)
    box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]) / decoded.scale
    np.testing.assert_allclose(box, [1200, 800, 1500, 1100], atol=1 / decoded.scale)


def test_jpeg_is_drafted_at_a_reduced_scale(monkeypatch) -> None:
    drafts = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        drafts.append(result := real_draft(self, mode, size))
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)

    decode_image(save(solid(COLOUR, size=(4000, 3000)), "JPEG"), DecodeLimits(target_side=900))

    assert drafts == [("RGB", (0, 0, 1000, 750))]  # decoded at 1/4 scale, not full size


def test_downscaling_keeps_exif_rotation() -> None:
    decoded = decode_image(
        with_orientation(halves(RED, BLUE, (2000, 1000)), 6), DecodeLimits(target_side=500)
    )

    assert decoded.pixels.shape == (500, 250, 3)
    assert decoded.original_size == (1000, 2000)
    assert decoded.scale == pytest.approx(0.25)
    assert_colour(decoded.pixels[10, 10], RED, tolerance=8)


def test_one_pixel_picture_is_fine() -> None:
    decoded = decode_image(save(solid(COLOUR, size=(1, 1)), "PNG"))

    assert decoded.pixels.shape == (1, 1, 3)
    assert_colour(decoded.pixels[0, 0], COLOUR)


def test_pixels_are_writable() -> None:
    decoded = decode_image(save(solid(COLOUR), "JPEG"))

    decoded.pixels[0, 0] = (1, 2, 3)  # callers may draw on their copy

    assert decoded.pixels.flags.writeable
    assert decoded.pixels[0, 0].tolist() == [1, 2, 3]


# -- bad input -------------------------------------------------------------------


@cache
def small_jpeg() -> bytes:
    return save(halves(RED, BLUE, (64, 48)), "JPEG", quality=90)


@cache
def small_png() -> bytes:
    rng = np.random.default_rng(0)
    return save(Image.fromarray(rng.integers(0, 256, (48, 64, 3), np.uint8)), "PNG")


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("picture.png", small_png())
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    return handmade_png(width, height, 8, 2, b"\x00" * 16)


def gif_header(screen: tuple[int, int], frame: tuple[int, int]) -> bytes:
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", *screen, 0, 0, 0)
        + b","
        + struct.pack("<HHHHB", 0, 0, *frame, 0)
        + b"\x02\x02\x4c\x01\x00;"
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    jpeg = bytearray(small_jpeg())
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(jpeg)


def webp_declaring(width: int, height: int) -> bytes:
    vp8x = (
        b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    )
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def bmp_declaring(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return (
        b"BM" + struct.pack("<IHHI", 14 + len(info) + 64, 0, 0, 14 + len(info)) + info + bytes(64)
    )


def corrupt_idat(png: bytes) -> bytes:
    start = chunk_offset(png, b"IDAT") + 8
    return flip_bytes(png, start, 4)


def corrupt_idat_crc(png: bytes) -> bytes:
    start = chunk_offset(png, b"IDAT")
    (length,) = struct.unpack_from(">I", png, start)
    return flip_bytes(png, start + 8 + length, 2)


def corrupt_idat_keep_crc(png: bytes) -> bytes:
    """Damaged compressed data with a matching checksum: only the decoder can tell."""
    start = chunk_offset(png, b"IDAT")
    (length,) = struct.unpack_from(">I", png, start)
    payload = bytes(png[start + 8 : start + 8 + length])
    payload = payload[:2] + b"\xff" * 8 + payload[10:]
    return png[:start] + png_chunk(b"IDAT", payload) + png[start + 12 + length :]


BAD_INPUTS: list[tuple[str, Callable[[], bytes], type[ImageError], str]] = [
    ("zero bytes", lambda: b"", EmptyImageError, "empty"),
    ("truncated JPEG", lambda: small_jpeg()[: len(small_jpeg()) // 2], CorruptImageError, "JPEG"),
    ("truncated PNG", lambda: small_png()[: len(small_png()) // 2], CorruptImageError, "PNG"),
    ("PNG cut after its header", lambda: small_png()[:33], CorruptImageError, "PNG"),
    ("PNG with flipped IDAT bytes", lambda: corrupt_idat(small_png()), CorruptImageError, "PNG"),
    ("PNG with a bad IDAT CRC", lambda: corrupt_idat_crc(small_png()), CorruptImageError, "PNG"),
    (
        "PNG with bad deflate data",
        lambda: corrupt_idat_keep_crc(small_png()),
        CorruptImageError,
        "PNG",
    ),
    (
        "truncated GIF",
        lambda: save(Image.effect_noise((64, 64), 64).convert("P"), "GIF")[:300],
        CorruptImageError,
        "GIF",
    ),
    ("truncated WebP", lambda: save(solid(COLOUR), "WEBP")[:40], CorruptImageError, "WEBP"),
    ("truncated BMP", lambda: save(solid(COLOUR), "BMP")[:100], CorruptImageError, "BMP"),
    ("zero-width PNG", lambda: png_header(0, 10), CorruptImageError, "empty size"),
    (
        "text renamed as PNG",
        lambda: b"just some notes\nnot a picture\n",
        UnsupportedImageError,
        "text",
    ),
    (
        "HTML page",
        lambda: b"<!DOCTYPE html><html><body>nope</body></html>",
        UnsupportedImageError,
        "HTML",
    ),
    (
        "SVG drawing",
        lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
        UnsupportedImageError,
        "SVG",
    ),
    ("XML", lambda: b"<?xml version='1.0'?><feed/>", UnsupportedImageError, "XML"),
    ("PDF header", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", UnsupportedImageError, "PDF"),
    ("ZIP archive", zip_archive, UnsupportedImageError, "ZIP"),
    ("TIFF", lambda: save(solid(COLOUR), "TIFF"), UnsupportedImageError, "TIFF"),
    ("ICO", lambda: save(solid(COLOUR, size=(16, 16)), "ICO"), UnsupportedImageError, "ICO"),
    ("random binary", lambda: bytes(range(1, 256)) * 4, UnsupportedImageError, "unsupported"),
    ("'BM' text", lambda: b"BMW owners club newsletter", UnsupportedImageError, "text"),
    ("30,000×30,000 PNG header", lambda: png_header(30_000, 30_000), ImageTooLargeError, "30000"),
    ("PNG over max_side", lambda: png_header(25_000, 10), ImageTooLargeError, "a side"),
    ("PNG over max_pixels", lambda: png_header(10_000, 6_000), ImageTooLargeError, "megapixels"),
    ("65535×65535 GIF", lambda: gif_header((65535, 65535), (1, 1)), ImageTooLargeError, "large"),
    (
        "GIF frame beyond screen",
        lambda: gif_header((10, 10), (60000, 60000)),
        ImageTooLargeError,
        "60000",
    ),
    ("60000×60000 JPEG", lambda: jpeg_declaring(60000, 60000), ImageTooLargeError, "large"),
    ("16383×16383 WebP", lambda: webp_declaring(16383, 16383), ImageTooLargeError, "megapixels"),
    ("30000×30000 BMP", lambda: bmp_declaring(30000, -30000), ImageTooLargeError, "large"),
]


@pytest.mark.parametrize(
    ("name", "make", "error", "message"), BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_raises_its_specific_error(name, make, error, message) -> None:
    with pytest.raises(error) as raised:
        decode_image(make())

    assert type(raised.value) is error
    assert message.lower() in raised.value.user_message.lower()


@pytest.mark.parametrize(
    "make",
    [
        lambda: png_header(30_000, 30_000),
        lambda: gif_header((65535, 65535), (1, 1)),
        lambda: jpeg_declaring(60000, 60000),
        lambda: webp_declaring(16383, 16383),
        lambda: bmp_declaring(30000, 30000),
    ],
)
def test_oversized_headers_are_rejected_before_pillow_opens_them(make, monkeypatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Image.open must not be reached")

    monkeypatch.setattr(Image, "open", refuse)

    with pytest.raises(ImageTooLargeError):
        decode_image(make())


def test_over_max_bytes_is_too_large() -> None:
    with pytest.raises(ImageTooLargeError, match="too large"):
        decode_image(small_png(), DecodeLimits(max_bytes=len(small_png()) - 1))


def test_pixel_limit_is_checked() -> None:
    data = save(solid(COLOUR, size=(100, 100)), "PNG")

    decode_image(data, DecodeLimits(max_pixels=10_000))
    with pytest.raises(ImageTooLargeError):
        decode_image(data, DecodeLimits(max_pixels=9_999))


def test_pillow_bomb_limit_is_an_error_not_a_warning(monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    data = save(solid(COLOUR, size=(40, 40)), "PNG")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageTooLargeError):
            decode_image(data)


def test_errors_chain_the_original_exception() -> None:
    with pytest.raises(CorruptImageError) as raised:
        decode_image(small_jpeg()[: len(small_jpeg()) // 2])

    assert raised.value.__cause__ is not None


@pytest.mark.parametrize("limits", [{"max_bytes": 0}, {"max_pixels": -1}, {"target_side": 0}])
def test_nonsense_limits_are_refused(limits: dict) -> None:
    with pytest.raises(ValueError):
        DecodeLimits(**limits)


# -- sniffing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (save(solid(COLOUR), "JPEG"), "JPEG"),
        (save(solid(COLOUR), "PNG"), "PNG"),
        (save(solid(COLOUR), "WEBP"), "WEBP"),
        (save(solid(COLOUR), "GIF"), "GIF"),
        (save(solid(COLOUR), "BMP"), "BMP"),
        (save(solid(COLOUR), "TIFF"), None),
        (b"%PDF-1.4", None),
        (b"BMW", None),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),
        (b"", None),
    ],
)
def test_sniff_format_reads_magic_bytes(data: bytes, expected: str | None) -> None:
    assert sniff_format(data) == expected


# -- encode_png ----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 7, 3), (5, 7), (5, 7, 4)])
def test_encode_png_round_trips(shape: tuple[int, ...]) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, shape, np.uint8)

    png = encode_png(pixels)

    assert png.startswith(b"\x89PNG")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), pixels)


def test_encode_png_of_a_decoded_picture_decodes_to_the_same_pixels() -> None:
    decoded = decode_image(save(halves(RED, BLUE, (30, 20)), "PNG"))

    np.testing.assert_array_equal(decode_image(encode_png(decoded.pixels)).pixels, decoded.pixels)


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4, 3), np.uint8)],
)
def test_encode_png_refuses_other_arrays(pixels: np.ndarray) -> None:
    with pytest.raises(ValueError):
        encode_png(pixels)


# -- properties ------------------------------------------------------------------------

# Small limits keep mutated headers from asking for big (if harmless) allocations.
PROPERTY_LIMITS = DecodeLimits(max_pixels=1_000_000, target_side=64)
MAGIC_PREFIXES = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    b"RIFF\x00\x01\x00\x00WEBPVP8L",
    b"RIFF\x00\x01\x00\x00WEBPVP8X",
    b"GIF89a",
    b"BM\x00\x01\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00",
]


@cache
def seed_pictures() -> dict[str, bytes]:
    rng = np.random.default_rng(2)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 16, 3), np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (12, 16, 4), np.uint8))
    return {
        "png": save(rgba, "PNG"),
        "palette png": save(to_palette(rgb), "PNG", transparency=3),
        "jpeg": with_orientation(rgb, 6),
        "progressive jpeg": save(rgb, "JPEG", progressive=True),
        "gif": save(to_palette(rgb), "GIF", save_all=True, append_images=[to_palette(rgb)]),
        "webp": save(rgba, "WEBP"),
        "bmp": save(to_palette(rgb), "BMP"),
    }


def with_fixed_checksums(png: bytearray) -> bytearray:
    """Recompute every complete chunk's CRC, so that only the decoder sees the damage."""
    pos = 8
    while pos + 12 <= len(png):
        (length,) = struct.unpack_from(">I", png, pos)
        end = pos + 12 + length
        if end > len(png):
            break
        png[end - 4 : end] = struct.pack(">I", zlib.crc32(png[pos + 4 : end - 4]))
        pos = end
    return png


def assert_decodes_or_raises_image_error(data: bytes) -> None:
    try:
        decoded = decode_image(data, PROPERTY_LIMITS)
    except ImageError:
        return
    assert_valid(decoded)
    assert max(decoded.pixels.shape[:2]) <= 64


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_decode_or_raise_image_error(data: bytes) -> None:
    assert_decodes_or_raises_image_error(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(MAGIC_PREFIXES), st.binary(max_size=512))
def test_bytes_behind_a_magic_number_decode_or_raise_image_error(
    prefix: bytes, tail: bytes
) -> None:
    assert_decodes_or_raises_image_error(prefix + tail)


@st.composite
def mutated_pictures(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(sorted(seed_pictures())))
    data = bytearray(seed_pictures()[name])
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    if "png" in name and draw(st.booleans()):
        data = with_fixed_checksums(data)
    if draw(st.booleans()):
        del data[draw(st.integers(1, len(data))) :]
    return bytes(data)


# Pillow warns about the damaged EXIF blocks that mutations make.
@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_pictures())
def test_mutated_pictures_decode_or_raise_image_error(data: bytes) -> None:
    assert_decodes_or_raises_image_error(data)


@pytest.mark.parametrize(
    ("data", "english", "japanese"),
    [
        (b"who is this character?\n", "not a picture: looks like text", "テキスト"),
        (b"%PDF-1.7\n" + bytes(64), "not a picture: looks like a PDF document", "PDF 文書"),
        (b"II*\x00" + bytes(64), "unsupported picture format: looks like a TIFF picture", "TIFF"),
        (bytes(range(7, 71)), "unsupported format: not a picture this bot can read", "対応"),
    ],
)
def test_an_unsupported_file_is_described_in_the_readers_language(
    data: bytes, english: str, japanese: str
) -> None:
    """What an unsupported upload looks like reaches a Japanese reader in Japanese, the kind
    of file included (drive-through 4: "Not a picture: looks like text" came in English)."""
    from bot.errors import UnsupportedImageError
    from bot.i18n import Catalog

    with pytest.raises(UnsupportedImageError) as caught:
        decode_image(data)

    assert str(caught.value).startswith(english)
    shown = Catalog.load().texts("ja")(caught.value.phrase)
    assert japanese in shown
    assert not any(word in shown for word in ("looks like", "picture", "text")), shown
