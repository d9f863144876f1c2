"""Tests for untrusted-image intake."""

from __future__ import annotations

import contextlib
import io
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mediagate.images.intake import (
    ALLOWED_FORMATS,
    ImageRejected,
    encode,
    open_image,
    reencode,
    sniff_mime,
)


def _bytes(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _sample(mode: str = "RGB", size: tuple[int, int] = (40, 30)) -> Image.Image:
    img = Image.new(mode, size)
    for x in range(size[0]):
        for y in range(size[1]):
            value = ((x * 6) % 256, (y * 8) % 256, 128, 200)
            img.putpixel((x, y), value[: len(mode)] if mode != "L" else value[0])
    return img


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width x height`` but carries only a sliver of data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", sorted(ALLOWED_FORMATS))
def test_sniff_and_open_each_allowed_format(fmt: str) -> None:
    data = _bytes(_sample(), fmt)
    assert sniff_mime(data) == ALLOWED_FORMATS[fmt]
    img = open_image(data)
    assert img.size == (40, 30)
    assert img.mode in ("RGB", "RGBA")


@pytest.mark.parametrize(("fmt", "mime"), [("BMP", "image/bmp"), ("TIFF", "image/tiff")])
def test_disallowed_formats_are_refused(fmt: str, mime: str) -> None:
    data = _bytes(_sample(), fmt)
    assert sniff_mime(data) == mime
    with pytest.raises(ImageRejected) as info:
        open_image(data)
    assert info.value.reason == "unsupported_format"
    assert isinstance(info.value, ValueError)


def test_text_is_not_an_image() -> None:
    data = b"<svg xmlns='http://www.w3.org/2000/svg'></svg>"
    assert sniff_mime(data) is None
    with pytest.raises(ImageRejected) as info:
        open_image(data)
    assert info.value.reason == "unsupported_format"


def test_allowlist_restricts_formats() -> None:
    data = _bytes(_sample(), "GIF")
    with pytest.raises(ImageRejected) as info:
        open_image(data, allowed={"PNG", "JPEG"})
    assert info.value.reason == "unsupported_format"
    assert open_image(data, allowed={"image/gif"}).size == (40, 30)


def test_declared_type_cannot_smuggle_a_format() -> None:
    # A BMP whose first bytes are tampered to look like a PNG must not be decoded as BMP.
    data = b"\x89PNG\r\n\x1a\n" + _bytes(_sample(), "BMP")[8:]
    with pytest.raises(ImageRejected) as info:
        open_image(data)
    assert info.value.reason == "corrupt"


def test_empty_is_refused() -> None:
    with pytest.raises(ImageRejected) as info:
        open_image(b"")
    assert info.value.reason == "empty"


@pytest.mark.parametrize("side", [30_000, 10_000, 8_000])
def test_decompression_bomb_is_refused_before_decoding(side: int) -> None:
    # 10000^2 sits between Pillow's warning and error thresholds: no warning may leak. The data
    # holds a sliver of the pixels, so a decoder would fail as truncated: the reason shows the
    # refusal came from the header's size.
    data = _png_with_size(side, side)
    assert len(data) < 200
    with pytest.raises(ImageRejected) as info:
        open_image(data)
    assert info.value.reason == "too_many_pixels"


def test_webp_bomb_is_refused_before_decoder() -> None:
    data = bytearray(_bytes(_sample(), "WEBP", lossless=True))
    assert data[12:16] == b"VP8L"
    # Patch the VP8L header to declare 16384x16384.
    bits = int.from_bytes(data[21:25], "little")
    bits = (bits & ~0xFFFFFFF) | 0x3FFF | (0x3FFF << 14)
    data[21:25] = bits.to_bytes(4, "little")
    with pytest.raises(ImageRejected) as info:
        open_image(bytes(data))
    assert info.value.reason == "too_many_pixels"


def test_max_pixels_edge() -> None:
    data = _bytes(_sample(size=(40, 30)), "PNG")
    assert open_image(data, max_pixels=1200).size == (40, 30)
    with pytest.raises(ImageRejected) as info:
        open_image(data, max_pixels=1199)
    assert info.value.reason == "too_many_pixels"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_truncated_is_corrupt(fmt: str) -> None:
    data = _bytes(_sample(size=(200, 150)), fmt)
    with pytest.raises(ImageRejected) as info:
        open_image(data[: len(data) // 2])
    assert info.value.reason == "corrupt"


def test_garbage_after_magic_is_corrupt() -> None:
    with pytest.raises(ImageRejected) as info:
        open_image(b"\xff\xd8\xff" + b"\x00" * 64)
    assert info.value.reason == "corrupt"


def test_exif_orientation_is_applied_and_stripped() -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = _bytes(img, "JPEG", exif=exif.tobytes(), quality=95)
    out = open_image(data)
    assert out.size == (20, 40)
    r, g, b = out.getpixel((10, 5))
    assert b > 200 and r < 60  # the blue half is now on top
    assert "exif" not in out.info
    reencoded, mime, w, h = reencode(data)
    assert (mime, w, h) == ("image/jpeg", 20, 40)
    assert not Image.open(io.BytesIO(reencoded)).getexif()


def test_gif_first_frame_and_transparency() -> None:
    frames = [Image.new("P", (16, 16), i) for i in (1, 2)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
        frame.paste(0, (0, 0, 4, 4))  # a transparent corner
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], transparency=0)
    img = open_image(buf.getvalue())
    assert img.mode == "RGBA"
    assert img.getpixel((0, 0))[3] == 0
    assert img.getpixel((8, 8)) == (255, 0, 0, 255)  # red: frame 0, not frame 1's green


@pytest.mark.parametrize(("mode", "expected"), [("L", "RGB"), ("LA", "RGBA"), ("P", "RGB")])
def test_modes_normalised(mode: str, expected: str) -> None:
    img = Image.new(mode, (8, 8))
    assert open_image(_bytes(img, "PNG")).mode == expected


def test_sixteen_bit_png_keeps_tones() -> None:
    img = Image.new("I;16", (4, 4), 32768)
    out = open_image(_bytes(img, "PNG"))
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (128, 128, 128)


def test_encode_formats_and_alpha() -> None:
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    jpeg = encode(rgba, "jpeg")
    assert sniff_mime(jpeg) == "image/jpeg"
    flat = Image.open(io.BytesIO(jpeg))
    assert flat.mode == "RGB"
    assert min(flat.getpixel((5, 5))) > 240  # transparent became white, not black
    assert sniff_mime(encode(rgba, "PNG")) == "image/png"
    assert sniff_mime(encode(rgba, "WEBP", quality=50)) == "image/webp"
    with pytest.raises(ValueError):
        encode(rgba, "BMP")


def test_reencode_png_and_gif_become_png() -> None:
    for fmt in ("PNG", "GIF", "WEBP"):
        out, mime, w, h = reencode(_bytes(_sample(), fmt))
        assert (mime, w, h) == ("image/png", 40, 30)
        assert sniff_mime(out) == "image/png"


def test_reencode_passes_limits() -> None:
    with pytest.raises(ImageRejected) as info:
        reencode(_bytes(_sample(), "PNG"), max_pixels=100)
    assert info.value.reason == "too_many_pixels"


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.sampled_from(
        [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x10\x00\x00\x00WEBP"]
    ),
    st.binary(max_size=256),
)
def test_random_bytes_never_escape_as_other_errors(magic: bytes, tail: bytes) -> None:
    try:
        img = open_image(magic + tail)
    except ImageRejected as exc:
        assert exc.reason in ("corrupt", "too_many_pixels")
    else:
        assert img.mode in ("RGB", "RGBA")


@settings(max_examples=60, deadline=None, database=None)
@given(st.sampled_from(["PNG", "JPEG", "GIF", "WEBP"]), st.integers(0, 10_000), st.binary())
def test_mutated_images_never_escape(fmt: str, pos: int, junk: bytes) -> None:
    data = bytearray(_bytes(_sample(size=(24, 18)), fmt))
    pos = 8 + pos % (len(data) - 8)
    data[pos : pos + len(junk)] = junk
    with contextlib.suppress(ImageRejected):
        open_image(bytes(data))
