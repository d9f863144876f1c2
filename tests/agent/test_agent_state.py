"""AgentState: validation, target ratio and size."""

from __future__ import annotations

import pytest
from PIL import Image

from mediagate.agent.state import TOOLS, AgentState, nearest_ratio


def _state(**overrides: object) -> AgentState:
    fields: dict[str, object] = {
        "instructions": "make it nice",
        "inputs": [],
        "aspect_ratio": "1:1",
        "resolution": "2K",
        "max_steps": 5,
    }
    fields.update(overrides)
    return AgentState(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ratio", "resolution", "size"),
    [
        ("16:9", "2K", (2048, 1152)),
        ("9:16", "2K", (1152, 2048)),
        ("4:5", "2K", (1638, 2048)),
        ("1:1", "4K", (4096, 4096)),
        ("3:2", "4K", (4096, 2730)),
    ],
)
def test_target_size_has_the_resolutions_long_side(
    ratio: str, resolution: str, size: tuple[int, int]
) -> None:
    state = _state(aspect_ratio=ratio, resolution=resolution)
    assert state.target_ratio() == ratio
    assert state.target_size() == size


def test_auto_takes_the_first_inputs_ratio_else_square() -> None:
    portrait = Image.new("RGB", (300, 400))
    state = _state(aspect_ratio="auto", inputs=[portrait, Image.new("RGB", (500, 200))])
    assert state.target_ratio() == "3:4"
    assert state.target_size() == (1536, 2048)
    assert _state(aspect_ratio="auto").target_ratio() == "1:1"


def test_auto_never_picks_a_ratio_the_agent_does_not_offer() -> None:
    # 21:9 exists in the image presets but not for the agent.
    assert nearest_ratio(2100, 900) == "16:9"
    state = _state(aspect_ratio="auto", inputs=[Image.new("RGB", (2100, 900))])
    assert state.target_size() == (2048, 1152)


def test_work_size_stays_at_2k_for_4k_targets() -> None:
    assert _state(aspect_ratio="16:9", resolution="4K").work_size() == (2048, 1152)
    assert _state(aspect_ratio="16:9", resolution="2K").work_size() == (2048, 1152)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"aspect_ratio": "21:9"}, "aspect ratio"),
        ({"resolution": "1K"}, "resolution"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": 31}, "max_steps"),
        ({"instructions": "hi"}, "instructions"),
        ({"instructions": "x" * 10_001}, "instructions"),
        ({"allowed_tools": frozenset({"paint"})}, "unknown tool"),
        ({"allowed_tools": frozenset({"adjust"})}, "generate"),
    ],
)
def test_invalid_states_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _state(**overrides)


def test_finish_is_always_allowed() -> None:
    state = _state(allowed_tools=frozenset({"generate"}))
    assert state.allowed_tools == {"generate", "finish"}
    assert set(_state().allowed_tools) == set(TOOLS)
