"""The builtin planner: what it reads from instructions and what a full run makes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

from mediagate.agent.planner import RuleBasedPlanner
from mediagate.agent.rules import build_plan, read_brief
from mediagate.agent.runner import run_agent
from mediagate.agent.state import AgentState, Step
from tests.agent.conftest import photo

EXAMPLE = (
    "put these two photos side by side, make it black and white and write 'Summer 2026' "
    "at the bottom"
)


def _state(instructions: str, inputs: list[Image.Image], **overrides: Any) -> AgentState:
    fields: dict[str, Any] = {"aspect_ratio": "16:9", "resolution": "2K", "max_steps": 10}
    fields.update(overrides)
    return AgentState(instructions, inputs, **fields)


async def _run(state: AgentState) -> tuple[Image.Image, list[Step], list[tuple[int, str]]]:
    events: list[tuple[int, str]] = []

    async def on_step(index: int, step: Step, image: Image.Image) -> None:
        events.append((index, step.tool))

    image, steps = await run_agent(state, RuleBasedPlanner(), on_step)
    return image, steps, events


def _tools(steps: list[Step]) -> list[str]:
    return [step.tool for step in steps]


# --- reading instructions -----------------------------------------------------------------------


def test_the_example_brief() -> None:
    brief = read_brief(EXAMPLE)
    assert brief.captions == [("Summer 2026", "bottom", "white")]
    assert brief.layout == "row"
    assert brief.adjust == {"grayscale": True}
    assert brief.edits == []
    assert "Summer" not in brief.prompt


@pytest.mark.parametrize(
    ("instructions", "adjust"),
    [
        ("give it a vintage sepia look", {"sepia": True}),
        ("make it brighter with more contrast", {"brightness": 1.25, "contrast": 1.35}),
        ("darker and moodier please, less contrast", {"brightness": 0.75, "contrast": 0.75}),
        ("vivid, saturated colours and sharpen it", {"saturation": 1.4, "sharpness": 2.0}),
        ("a muted, washed-out look", {"saturation": 0.6}),
        ("make the colors pop", {"saturation": 1.4}),
        ("invert the colours", {"invert": True}),
        ("greyscale but also sepia", {"sepia": True}),
        ("desaturated, B&W", {"grayscale": True}),
        ("make it nice", {}),
    ],
)
def test_colour_words_become_adjustments(instructions: str, adjust: dict[str, Any]) -> None:
    assert read_brief(instructions).adjust == adjust


def test_geometric_words_become_edits() -> None:
    brief = read_brief("rotate it 90 degrees counter clockwise, flip it vertically and blur")
    assert brief.edits == ["rotate 270 degrees", "flip vertically", "blur"]


@pytest.mark.parametrize(
    ("instructions", "layout"),
    [
        ("stack them on top of each other", "column"),
        ("make a collage", "grid"),
        ("put them next to each other", "row"),
        ("combine them", None),
    ],
)
def test_layout_words(instructions: str, layout: str | None) -> None:
    assert read_brief(instructions).layout == layout


def test_captions_take_their_own_placement_and_colour() -> None:
    brief = read_brief(
        'Add the title "Big Sale" at the top in yellow. Then write "50% off" across the middle '
        "and 'ends Sunday' at the bottom"
    )
    assert brief.captions == [
        ("Big Sale", "top", "yellow"),
        ("50% off", "center", "white"),
        ("ends Sunday", "bottom", "white"),
    ]


def test_titles_default_to_the_top_and_other_text_to_the_bottom() -> None:
    assert read_brief('a poster with the headline "NIGHT OWLS"').captions[0][1] == "top"
    assert read_brief("a postcard that says 'Greetings from Rome'").captions[0][1] == "bottom"


def test_quoted_words_are_not_instructions() -> None:
    brief = read_brief("write 'Black and White Night' at the top")
    assert brief.adjust == {} and brief.captions == [("Black and White Night", "top", "white")]
    assert read_brief("don't make it 'too' busy, it's fine").captions == []  # no text verb
    assert read_brief("it's the photographer's favourite").captions == []


# --- plans --------------------------------------------------------------------------------------


def test_the_example_plan(photos: list[Image.Image]) -> None:
    plan = build_plan(_state(EXAMPLE, photos))
    assert _tools(plan) == ["compose", "adjust", "reframe", "resize", "overlay_text", "finish"]
    assert plan[0].args == {"layout": "row", "aspect_ratio": "16:9"}
    assert plan[1].args == {"grayscale": True}
    assert plan[4].args == {"text": "Summer 2026", "position": "bottom", "color": "white"}
    assert all(step.summary for step in plan)


def test_without_inputs_the_plan_generates_first() -> None:
    plan = build_plan(_state('a sunset over the sea, with the caption "Hello" on top', []))
    assert _tools(plan) == ["generate", "reframe", "resize", "overlay_text", "finish"]
    assert plan[0].args == {"prompt": "a sunset over the sea, with the caption on top"}


def test_a_quote_alone_is_the_prompt() -> None:
    assert build_plan(_state('"a lighthouse in a storm"', []))[0].args == {
        "prompt": '"a lighthouse in a storm"'
    }


def test_allowed_tools_are_respected_and_finish_stays(photos: list[Image.Image]) -> None:
    allowed = frozenset({"compose", "resize"})
    plan = build_plan(_state(EXAMPLE, photos, allowed_tools=allowed))
    assert _tools(plan) == ["compose", "resize", "finish"]


@pytest.mark.parametrize(
    ("max_steps", "tools"),
    [
        (2, ["compose", "finish"]),
        (3, ["compose", "resize", "finish"]),
        (4, ["compose", "resize", "overlay_text", "finish"]),
        (5, ["compose", "adjust", "resize", "overlay_text", "finish"]),
        (30, ["compose", "adjust", "reframe", "resize", "overlay_text", "finish"]),
    ],
)
def test_tight_budgets_keep_the_most_important_steps(
    photos: list[Image.Image], max_steps: int, tools: list[str]
) -> None:
    assert _tools(build_plan(_state(EXAMPLE, photos, max_steps=max_steps))) == tools


def test_a_single_step_makes_an_image() -> None:
    assert _tools(build_plan(_state("a red fox", [], max_steps=1))) == ["generate"]
    with_input = _state("make it pop", [photo(100, 100, 0)], max_steps=1)
    assert _tools(build_plan(with_input)) == ["resize"]


# --- full runs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("ratio", "size"), [("16:9", (2048, 1152)), ("4:5", (1638, 2048))])
async def test_the_example_end_to_end(
    photos: list[Image.Image], ratio: str, size: tuple[int, int]
) -> None:
    image, steps, events = await _run(_state(EXAMPLE, photos, aspect_ratio=ratio))
    # compose already fills the target frame at 2K, so reframe and resize have nothing to do.
    assert _tools(steps) == ["compose", "adjust", "overlay_text", "finish"]
    assert events == [(i + 1, s.tool) for i, s in enumerate(steps)]
    assert image.size == size and max(image.size) == 2048

    arr = np.asarray(image, dtype=np.int16)
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()

    silent = EXAMPLE.replace(" and write 'Summer 2026' at the bottom", "")
    plain, plain_steps, _ = await _run(_state(silent, photos, aspect_ratio=ratio))
    assert _tools(plain_steps) == ["compose", "adjust", "finish"]
    diff = np.abs(arr - np.asarray(plain, dtype=np.int16)).sum(axis=2)
    rows = np.nonzero(diff.sum(axis=1))[0]
    assert len(rows) > 0.03 * size[1]  # the caption is really drawn
    assert rows.min() > 0.75 * size[1]  # and only in the bottom band
    columns = np.nonzero(diff.sum(axis=0))[0]
    assert abs((columns.min() + columns.max()) / 2 - size[0] / 2) < 0.02 * size[0]  # centred


async def test_4k_output(photos: list[Image.Image]) -> None:
    image, steps, _ = await _run(_state(EXAMPLE, photos, resolution="4K"))
    assert image.size == (4096, 2304)
    assert _tools(steps) == ["compose", "adjust", "resize", "overlay_text", "finish"]


async def test_auto_ratio_follows_the_first_input(photos: list[Image.Image]) -> None:
    image, _, _ = await _run(_state(EXAMPLE, photos[::-1], aspect_ratio="auto"))
    assert image.size == (1536, 2048)  # the 3:4 portrait came first


async def test_no_inputs_generate(photos: list[Image.Image]) -> None:
    image, steps, _ = await _run(_state("a golden desert at sunset, vivid", [], aspect_ratio="1:1"))
    assert _tools(steps) == ["generate", "adjust", "finish"]
    assert image.size == (2048, 2048)


async def test_single_input_is_reframed_and_resized() -> None:
    state = _state("rotate it 90 degrees and make it sepia", [photo(400, 300, 50)])
    image, steps, _ = await _run(state)
    assert _tools(steps) == ["edit", "adjust", "reframe", "resize", "finish"]
    assert image.size == (2048, 1152)


@pytest.mark.parametrize("max_steps", [1, 30])
async def test_step_limits_are_respected(photos: list[Image.Image], max_steps: int) -> None:
    image, steps, events = await _run(_state(EXAMPLE, photos, max_steps=max_steps))
    assert len(steps) <= max_steps and len(events) == len(steps)
    assert image.size == (2048, 1152)
    if max_steps == 1:
        assert _tools(steps) == ["resize"]  # the first input, brought to size
    else:
        assert steps[-1].tool == "finish"


async def test_allowed_tools_in_a_run(photos: list[Image.Image]) -> None:
    state = _state(EXAMPLE, photos, allowed_tools=frozenset({"compose", "resize"}))
    image, steps, _ = await _run(state)
    assert _tools(steps) == ["compose", "finish"]
    arr = np.asarray(image, dtype=np.int16)
    assert np.abs(arr[..., 0] - arr[..., 1]).max() > 50  # not made grayscale
