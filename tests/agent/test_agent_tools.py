"""Each tool's effect on pixels and sizes, and its argument checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

from mediagate.agent.state import AgentState, Step
from mediagate.agent.tools import ToolError, apply, finalize, validate
from tests.agent.conftest import photo


def _state(inputs: list[Image.Image] | None = None, **overrides: Any) -> AgentState:
    fields: dict[str, Any] = {
        "instructions": "test the tools",
        "inputs": inputs or [],
        "aspect_ratio": "16:9",
        "resolution": "2K",
        "max_steps": 10,
    }
    fields.update(overrides)
    return AgentState(**fields)


def _run(tool: str, state: AgentState, **args: Any) -> Image.Image:
    return apply(Step(tool, args, tool), state)


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


def _changed_rows(a: Image.Image, b: Image.Image) -> np.ndarray:
    return np.nonzero(np.abs(_arr(a) - _arr(b)).sum(axis=(1, 2)))[0]


# --- generate and edit ------------------------------------------------------------------------


def test_generate_paints_the_prompt_at_the_working_size_deterministically() -> None:
    state = _state()
    first = _run("generate", state, prompt="a red fox in the snow")
    assert first.size == (2048, 1152) and first.mode == "RGB"
    assert first.tobytes() == _run("generate", state, prompt="a red fox in the snow").tobytes()
    assert first.tobytes() != _run("generate", state, prompt="a blue whale").tobytes()
    assert _run("generate", state, prompt="x", aspect_ratio="1:1").size == (2048, 2048)


def test_generate_for_4k_stays_at_the_working_size() -> None:
    assert _run("generate", _state(resolution="4K"), prompt="hills").size == (2048, 1152)


def test_edit_works_on_current_or_a_chosen_input(photos: list[Image.Image]) -> None:
    state = _state(photos)
    assert _run("edit", state, prompt="rotate 90 degrees").size == (300, 400)
    assert _run("edit", state, prompt="rotate 90 degrees", input_index=1).size == (400, 300)
    state.current = Image.new("RGB", (50, 20), (200, 10, 10))
    gray = _arr(_run("edit", state, prompt="make it black and white"))
    assert gray.shape == (20, 50, 3) and (gray[..., 0] == gray[..., 2]).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"prompt": "make the sky purple"}, "no supported edit"),
        ({"prompt": "blur", "input_index": 2}, "not an input index"),
        ({}, "prompt must be a non-empty string"),
    ],
)
def test_edit_rejects_bad_arguments(
    photos: list[Image.Image], args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        _run("edit", _state(photos), **args)


# --- compose ------------------------------------------------------------------------------------


def test_compose_row_gives_uniform_heights_and_a_white_gutter(photos: list[Image.Image]) -> None:
    out = _run("compose", _state(photos), layout="row", gutter=10)
    # Both at the smaller height (300): 400x300 stays, 300x400 becomes 225x300.
    assert out.size == (400 + 10 + 225, 300)
    arr = _arr(out)
    assert (arr[:, 400:410] == 255).all()
    assert np.abs(arr[:, :400] - _arr(photos[0])).mean() < 1


def test_compose_column_gives_uniform_widths(photos: list[Image.Image]) -> None:
    out = _run("compose", _state(photos), layout="column", gutter=0)
    assert out.size == (300, 225 + 400)


def test_compose_grid_and_its_default_layout() -> None:
    four = [photo(200, 200, 40 * i) for i in range(4)]
    out = _run("compose", _state(four), gutter=8)  # four images default to a grid
    assert out.size == (2 * 200 + 8, 2 * 200 + 8)
    three = _run("compose", _state(four[:3]), layout="grid", gutter=8)
    assert three.size == (408, 408)
    assert (_arr(three)[204:, :100] == 255).all()  # the short last row is centred


def test_compose_fills_an_aspect_ratio_exactly(photos: list[Image.Image]) -> None:
    state = _state(photos, aspect_ratio="1:1")
    assert _run("compose", state, layout="row", aspect_ratio="16:9").size == (2048, 1152)
    assert _run("compose", state, layout="column", aspect_ratio="4:5").size == (1638, 2048)
    assert _run("compose", state, layout="grid", aspect_ratio="1:1").size == (2048, 2048)


def test_compose_can_include_the_current_image(photos: list[Image.Image]) -> None:
    state = _state(photos[:1])
    state.current = Image.new("RGB", (100, 300), (0, 0, 255))
    out = _run("compose", state, include_current=True, gutter=0)
    assert out.size == (100 + 400, 300)
    assert tuple(_arr(out)[150, 50]) == (0, 0, 255)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"images": [0]}, "needs 2 to 16 images, got 1"),
        ({"images": [0, 5]}, "not an input index"),
        ({"layout": "spiral"}, "layout must be one of row, column, grid"),
        ({"include_current": True}, "no current image"),
        ({"gutter": -1}, "gutter must be between 0 and 256"),
        ({"aspect_ratio": "21:9"}, "aspect_ratio must be one of"),
    ],
)
def test_compose_rejects_bad_arguments(
    photos: list[Image.Image], args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        _run("compose", _state(photos), **args)


# --- reframe and resize -------------------------------------------------------------------------


def test_reframe_centre_crops_to_a_ratio(photos: list[Image.Image]) -> None:
    state = _state(photos)
    square = _run("reframe", state, aspect_ratio="1:1")
    assert square.size == (300, 300)
    assert square.tobytes() == photos[0].crop((50, 0, 350, 300)).tobytes()
    assert _run("reframe", state).size == (400, 225)  # the target ratio, 16:9


def test_resize_to_the_target_or_a_long_side(photos: list[Image.Image]) -> None:
    state = _state(photos)
    assert _run("resize", state).size == (2048, 1152)  # crops the least it must
    assert _run("resize", state, long_side=800).size == (800, 600)
    assert _run("resize", _state(photos, resolution="4K")).size == (4096, 2304)
    with pytest.raises(ToolError, match="long_side must be an integer"):
        _run("resize", state, long_side=800.5)


# --- adjust -------------------------------------------------------------------------------------


def test_adjust_factors_move_the_pixels_the_right_way(photos: list[Image.Image]) -> None:
    state = _state(photos)
    base = _arr(photos[0])
    assert _arr(_run("adjust", state, brightness=1.5)).mean() > base.mean() + 20
    assert _arr(_run("adjust", state, contrast=0.4)).std() < base.std() * 0.6
    flat = _arr(_run("adjust", state, saturation=0.0))
    assert np.abs(flat[..., 0] - flat[..., 1]).max() <= 1


def test_adjust_grayscale_sepia_and_invert(photos: list[Image.Image]) -> None:
    state = _state(photos)
    gray = _arr(_run("adjust", state, grayscale=True))
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    sepia = _arr(_run("adjust", state, sepia=True)).reshape(-1, 3).mean(axis=0)
    assert sepia[0] > sepia[1] > sepia[2]
    inverted = _arr(_run("adjust", state, invert=True))
    assert (inverted == 255 - _arr(photos[0])).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "give at least one of"),
        ({"grayscale": False}, "give at least one of"),
        ({"brightness": 9}, "brightness must be between 0.0 and 4.0"),
        ({"contrast": True}, "contrast must be a number"),
        ({"sepia": "yes"}, "sepia must be true or false"),
        ({"hue": 0.5}, r"unknown argument\(s\) hue"),
    ],
)
def test_adjust_rejects_bad_arguments(
    photos: list[Image.Image], args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        _run("adjust", _state(photos), **args)


# --- overlay_text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "band"), [("top", (0.0, 0.3)), ("center", (0.3, 0.7)), ("bottom", (0.7, 1.0))]
)
def test_overlay_text_lands_where_asked(position: str, band: tuple[float, float]) -> None:
    state = _state()
    state.current = Image.new("RGB", (800, 600), (128, 128, 128))
    out = _run("overlay_text", state, text="Summer 2026", position=position)
    rows = _changed_rows(out, state.current)
    assert len(rows) > 20
    assert band[0] * 600 <= rows.min() and rows.max() <= band[1] * 600
    pixels = _arr(out).reshape(-1, 3)
    assert (pixels == 255).all(axis=1).any() and (pixels < 40).all(axis=1).any()  # fill, outline


def test_overlay_text_colour_size_and_wrapping() -> None:
    state = _state()
    state.current = Image.new("RGB", (600, 600), (30, 30, 30))
    yellow = _arr(_run("overlay_text", state, text="Hi", color="yellow")).reshape(-1, 3)
    assert ((yellow[:, 0] > 240) & (yellow[:, 1] > 240) & (yellow[:, 2] < 20)).any()
    small = _changed_rows(_run("overlay_text", state, text="Hi", size=0.04), state.current)
    big = _changed_rows(_run("overlay_text", state, text="Hi", size=0.2), state.current)
    assert len(big) > 3 * len(small)
    long_text = " ".join(["wrapping"] * 12)
    wrapped = _run("overlay_text", state, text=long_text, position="center")
    columns = np.nonzero(np.abs(_arr(wrapped) - _arr(state.current)).sum(axis=(0, 2)))[0]
    assert columns.min() > 0 and columns.max() < 599  # fits the width
    assert len(_changed_rows(wrapped, state.current)) > 2 * 0.08 * 600  # on several lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"text": "  "}, "text must be a non-empty string"),
        ({"text": "x" * 201}, "longer than 200"),
        ({"text": "hi", "position": "left"}, "position must be one of top, center, bottom"),
        ({"text": "hi", "color": "not-a-colour"}, "not a CSS colour"),
        ({"text": "hi", "size": 0.9}, "size must be between"),
    ],
)
def test_overlay_text_rejects_bad_arguments(args: dict[str, Any], message: str) -> None:
    state = _state()
    state.current = Image.new("RGB", (100, 100))
    with pytest.raises(ToolError, match=message):
        _run("overlay_text", state, **args)


# --- finish, finalize and the shared checks -----------------------------------------------------


def test_finish_returns_the_current_image_or_a_fallback(photos: list[Image.Image]) -> None:
    state = _state(photos)
    assert _run("finish", state).tobytes() == photos[0].tobytes()
    state.current = Image.new("RGB", (10, 10), (1, 2, 3))
    assert _run("finish", state) is state.current
    assert _run("finish", _state()).size == (2048, 1152)  # nothing yet: paint the brief


def test_finalize_brings_any_result_to_the_exact_target_size() -> None:
    state = _state(resolution="4K")
    state.current = Image.new("RGB", (500, 500), (9, 9, 9))
    assert finalize(state).size == (4096, 2304)


def test_tools_do_not_touch_the_state(photos: list[Image.Image]) -> None:
    state = _state(photos)
    before = photos[0].tobytes()
    steps: list[tuple[str, dict[str, Any]]] = [
        ("adjust", {"invert": True}),
        ("overlay_text", {"text": "x"}),
    ]
    for tool, args in steps:
        _run(tool, state, **args)
    assert state.current is None and photos[0].tobytes() == before


def test_inputs_with_transparency_are_flattened_onto_white() -> None:
    clear = Image.new("RGBA", (40, 30), (255, 0, 0, 0))
    out = _run("reframe", _state([clear]), aspect_ratio="4:3")
    assert out.mode == "RGB" and tuple(_arr(out)[0, 0]) == (255, 255, 255)


def test_huge_inputs_are_scaled_down_on_first_use() -> None:
    big = Image.new("RGB", (5000, 2500), (10, 200, 30))
    assert _run("adjust", _state([big]), brightness=1.1).size == (2048, 1024)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (Step("paint", {}, ""), "unknown tool 'paint'"),
        (Step("finish", {"now": True}, ""), r"finish: unknown argument\(s\) now"),
        (Step("reframe", {}, ""), "there is no image yet"),
    ],
)
def test_bad_steps_raise_tool_errors(step: Step, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        apply(step, _state())


def test_disallowed_tools_are_refused(photos: list[Image.Image]) -> None:
    state = _state(photos, allowed_tools=frozenset({"compose"}))
    with pytest.raises(ToolError, match="'adjust' is not allowed"):
        validate(Step("adjust", {"invert": True}, ""), state)
