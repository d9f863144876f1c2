"""Tests for the offline sandbox image engine."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from mediagate.images import builtin
from mediagate.images.builtin import (
    EDIT_OPERATIONS,
    apply_edits,
    edit,
    mark_sandbox,
    parse_edits,
    render,
    sandbox_band,
)

_VOCAB = [
    *(p for phrases in EDIT_OPERATIONS.values() for p in phrases),
    *("it", "the", "by", "to", "90", "180", "270", "45", "0", "400", "degrees", "left"),
    *("right", "counter", "anti", "clockwise", "square", "16:9", "9:16", "0:0", "3:0"),
    *("upside", "down", "vertically", "horizontally", "cat", "hat,", "and", "then"),
]


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """An unmarked, textured RGB picture (gradient + checkerboard) to edit."""
    base = builtin._paint("edit fixture", 160, 120, 0)
    arr = np.asarray(base).astype(np.int16)
    yy, xx = np.mgrid[0:120, 0:160]
    arr += np.where(((xx // 10) + (yy // 10)) % 2 == 0, 40, -40)[..., None].astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


# --- render ------------------------------------------------------------------------------


def test_render_is_deterministic() -> None:
    a = render("a red fox in the snow", 320, 200)
    b = render("a red fox in the snow", 320, 200)
    assert a.size == (320, 200) and a.mode == "RGB"
    assert a.tobytes() == b.tobytes()


def test_render_varies_with_prompt_and_index() -> None:
    base = render("a lighthouse", 256, 256).tobytes()
    assert render("a lighthouse at dusk", 256, 256).tobytes() != base
    assert render("a lighthouse", 256, 256, index=1).tobytes() != base


def test_colour_words_steer_the_palette() -> None:
    top = (0, 0, 256, 200)  # stay clear of the sandbox band
    red = _arr(render("red fire", 256, 256).crop(top)).mean(axis=(0, 1))
    blue = _arr(render("blue ocean", 256, 256).crop(top)).mean(axis=(0, 1))
    forest = _arr(render("a deep forest", 256, 256).crop(top)).mean(axis=(0, 1))
    assert red[0] > red[2] + 40
    assert blue[2] > blue[0] + 40
    assert forest[1] > forest[2] and forest[1] > forest[0]


def test_render_is_not_flat() -> None:
    img = _arr(render("anything", 256, 256).crop((0, 0, 256, 200)))
    assert img.std() > 5


def test_sandbox_band_marks_only_the_band() -> None:
    plain = builtin._paint("a castle", 800, 600, 0)
    marked = render("a castle", 800, 600)
    left, top, right, bottom = sandbox_band(800, 600)
    assert (left, right, bottom) == (0, 800, 600) and 0 < top < 600
    assert marked.crop((0, 0, 800, top)).tobytes() == plain.crop((0, 0, 800, top)).tobytes()
    band, plain_band = _arr(marked.crop((0, top, 800, 600))), _arr(plain.crop((0, top, 800, 600)))
    assert np.abs(band - plain_band).mean() > 30
    # Text pixels: bright yellow title and white caption on a dark band.
    assert (band.min(axis=2) > 200).sum() > 50
    assert ((band[..., 0] > 200) & (band[..., 2] < 60)).sum() > 50


def test_band_scales_with_image() -> None:
    small = sandbox_band(512, 512)
    large = sandbox_band(4096, 4096)
    assert large[3] - large[1] > 6 * (small[3] - small[1])


def test_mark_sandbox_keeps_alpha_and_does_not_mutate() -> None:
    img = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    out = mark_sandbox(img, "x" * 200)
    assert out.mode == "RGBA"
    assert img.getpixel((100, 199)) == (0, 0, 0, 0)
    assert out.getpixel((100, 199))[3] > 150  # the band is visible even over transparency
    assert out.getpixel((100, 10)) == (0, 0, 0, 0)


def test_mark_sandbox_tiny_image() -> None:
    assert mark_sandbox(Image.new("RGB", (8, 8)), "tiny").size == (8, 8)


def test_render_4k() -> None:
    img = render("sunset over the ocean " * 10, 4096, 4096)
    assert img.size == (4096, 4096)


@pytest.mark.parametrize(("w", "h"), [(0, 10), (10, -1), (builtin.MAX_SIDE + 1, 10)])
def test_render_rejects_bad_sizes(w: int, h: int) -> None:
    with pytest.raises(ValueError):
        render("x", w, h)


# --- edit parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("make it black and white", ["grayscale"]),
        ("Greyscale please", ["grayscale"]),
        ("MONOCHROME", ["grayscale"]),
        ("give it a vintage look", ["sepia"]),
        ("soften the photo", ["blur"]),
        ("sharpen", ["sharpen"]),
        ("make it brighter", ["brighten"]),
        ("lighten it", ["brighten"]),
        ("darker", ["darken"]),
        ("rotate", ["rotate:90"]),
        ("rotate 180 degrees", ["rotate:180"]),
        ("rotate left", ["rotate:270"]),
        ("rotate it 90 degrees counter-clockwise", ["rotate:270"]),
        ("rotate by 45", ["rotate:45"]),
        ("mirror it", ["flip:horizontal"]),
        ("flip vertically", ["flip:vertical"]),
        ("turn it upside down", ["flip:vertical"]),
        ("flip it upside down", ["flip:vertical"]),
        ("crop to 16:9", ["crop:16:9"]),
        ("crop square", ["crop:1:1"]),
        ("square crop", ["crop:1:1"]),
        ("negative", ["invert"]),
        ("rotate left then black and white, then sharpen", ["rotate:270", "grayscale", "sharpen"]),
        ("a cat wearing a hat", []),
        ("", []),
    ],
)
def test_parse_edits(prompt: str, expected: list[str]) -> None:
    assert parse_edits(prompt) == expected


def test_crop_falls_back_to_aspect_ratio_argument() -> None:
    assert parse_edits("crop it") == []
    assert parse_edits("crop it", aspect_ratio="4:5") == ["crop:4:5"]
    assert parse_edits("crop to 16:9", aspect_ratio="4:5") == ["crop:16:9"]


def test_every_operation_has_triggers() -> None:
    for op, phrases in EDIT_OPERATIONS.items():
        assert phrases
        for phrase in phrases:
            ops = parse_edits(f"{phrase} to square" if op == "crop" else phrase)
            assert ops and ops[0].split(":")[0] == op, phrase


# --- edit effects ------------------------------------------------------------------------


def test_unknown_prompt_changes_nothing(photo: Image.Image) -> None:
    out, ops = apply_edits(photo, "make it look like a Monet")
    assert ops == []
    assert out.tobytes() == photo.tobytes() and out is not photo


def test_grayscale(photo: Image.Image) -> None:
    out, ops = apply_edits(photo, "black and white")
    a = _arr(out)
    assert ops == ["grayscale"] and out.mode == "RGB"
    assert np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2])


def test_invert(photo: Image.Image) -> None:
    out, _ = apply_edits(photo, "invert the colours")
    assert np.array_equal(_arr(out), 255 - _arr(photo))


def test_rotate_swaps_dimensions_and_turns_clockwise(photo: Image.Image) -> None:
    out, ops = apply_edits(photo, "rotate 90")
    assert ops == ["rotate:90"] and out.size == (120, 160)
    # Clockwise: the original bottom-left pixel ends up top-left.
    assert out.getpixel((0, 0)) == photo.getpixel((0, 119))
    left, _ = apply_edits(photo, "rotate left")
    assert left.getpixel((0, 0)) == photo.getpixel((159, 0))
    half, _ = apply_edits(photo, "rotate 180 degrees")
    assert half.size == photo.size and half.getpixel((0, 0)) == photo.getpixel((159, 119))


def test_crop_to_ratio(photo: Image.Image) -> None:
    out, _ = apply_edits(photo, "crop to 16:9")
    assert out.size == (160, 90)
    assert out.getpixel((0, 0)) == photo.getpixel((0, 15))  # centred
    square, _ = apply_edits(photo, "crop square")
    assert square.size == (120, 120)
    tall, ops = apply_edits(photo, "crop", aspect_ratio="9:16")
    assert ops == ["crop:9:16"]
    assert abs(tall.width / tall.height - 9 / 16) < 0.02


def test_brighten_and_darken(photo: Image.Image) -> None:
    mean = _arr(photo).mean()
    assert _arr(apply_edits(photo, "brighten")[0]).mean() > mean + 10
    assert _arr(apply_edits(photo, "darken")[0]).mean() < mean - 10


def test_sepia_tint(photo: Image.Image) -> None:
    out, ops = apply_edits(photo, "sepia")
    r, g, b = _arr(out).mean(axis=(0, 1))
    assert ops == ["sepia"] and r > g > b


def test_flip_mirrors(photo: Image.Image) -> None:
    out, _ = apply_edits(photo, "flip")
    assert np.array_equal(_arr(out), _arr(photo)[:, ::-1])
    vertical, _ = apply_edits(photo, "flip vertically")
    assert np.array_equal(_arr(vertical), _arr(photo)[::-1])


def test_blur_reduces_variance(photo: Image.Image) -> None:
    out, _ = apply_edits(photo, "blur")
    assert _arr(out).var() < _arr(photo).var()
    assert _edge_energy(out) < 0.5 * _edge_energy(photo)


def _edge_energy(img: Image.Image) -> float:
    return float(_arr(img.convert("L").filter(ImageFilter.FIND_EDGES)).mean())


def test_sharpen_increases_edge_energy(photo: Image.Image) -> None:
    soft = photo.filter(ImageFilter.GaussianBlur(1))
    out, _ = apply_edits(soft, "sharpen")
    assert _edge_energy(out) > 1.2 * _edge_energy(soft)


def test_edits_apply_in_prompt_order(photo: Image.Image) -> None:
    out, ops = apply_edits(photo, "crop to 16:9, then rotate 90, then invert and greyscale")
    assert ops == ["crop:16:9", "rotate:90", "invert", "grayscale"]
    assert out.size == (90, 160)
    # Swapping the order of rotate and crop gives a different shape.
    other, _ = apply_edits(photo, "rotate 90 then crop to 16:9")
    assert other.size == (120, 68)
    expected = 255 - _arr(photo.crop((0, 15, 160, 105)).transpose(Image.Transpose.ROTATE_270))
    a = _arr(out)
    luma = expected @ np.array([0.299, 0.587, 0.114])  # Pillow's "L" conversion
    assert np.allclose(a[..., 0], luma, atol=1)


def test_edits_keep_alpha() -> None:
    img = Image.new("RGBA", (20, 10), (200, 100, 50, 77))
    out, _ = apply_edits(img, "invert, brighten, sepia and rotate")
    assert out.mode == "RGBA" and out.size == (10, 20)
    assert set(np.asarray(out)[..., 3].ravel().tolist()) == {77}


def test_edits_accept_other_modes() -> None:
    out, ops = apply_edits(Image.new("L", (10, 10), 100), "invert")
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (155, 155, 155)


def test_edit_path_is_marked(photo: Image.Image) -> None:
    out, ops = edit(photo, "mirror")
    plain, _ = apply_edits(photo, "mirror")
    top = sandbox_band(*out.size)[1]
    assert ops == ["flip:horizontal"]
    assert out.crop((0, 0, 160, top)).tobytes() == plain.crop((0, 0, 160, top)).tobytes()
    assert out.crop((0, top, 160, 120)).tobytes() != plain.crop((0, top, 160, 120)).tobytes()


def test_arbitrary_angle_expands_canvas(photo: Image.Image) -> None:
    out, ops = apply_edits(photo, "rotate by 45 degrees")
    assert ops == ["rotate:45"]
    assert out.width > photo.width and out.height > photo.height


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.sampled_from(_VOCAB), max_size=12).map(" ".join))
def test_any_prompt_parses_and_applies(prompt: str) -> None:
    img = Image.new("RGB", (24, 16), (90, 120, 150))
    out, ops = apply_edits(img, prompt, aspect_ratio="4:3")
    assert all(op.split(":")[0] in EDIT_OPERATIONS for op in ops)
    assert out.mode == "RGB" and out.width > 0 and out.height > 0
