"""The agent loop: events, limits, cancellation and the final size guarantee."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from PIL import Image

from mediagate.agent import tools
from mediagate.agent.planner import planner_for
from mediagate.agent.runner import AgentCanceled, ToolError, run_agent
from mediagate.agent.state import AgentState, Step


class Scripted:
    """A planner that replays steps, then repeats the last one forever."""

    name = "scripted"

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.calls = 0

    async def next_step(self, state: AgentState) -> Step:
        self.calls += 1
        return self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[int, str, tuple[int, int]]] = []

    async def __call__(self, index: int, step: Step, image: Image.Image) -> None:
        self.events.append((index, step.tool, image.size))


def _state(inputs: list[Image.Image] | None = None, **overrides: Any) -> AgentState:
    fields: dict[str, Any] = {"aspect_ratio": "16:9", "resolution": "2K", "max_steps": 10}
    fields.update(overrides)
    return AgentState("make something", inputs or [], **fields)


async def test_each_step_is_reported_with_its_image() -> None:
    planner = Scripted(
        Step("generate", {"prompt": "hills", "aspect_ratio": "1:1"}, "Paint hills"),
        Step("adjust", {"grayscale": True}, "Gray"),
        Step("finish", {}, "Done"),
    )
    recorder = Recorder()
    state = _state()
    image, steps = await run_agent(state, planner, recorder)
    assert recorder.events == [
        (1, "generate", (2048, 2048)),
        (2, "adjust", (2048, 2048)),
        (3, "finish", (2048, 2048)),
    ]
    assert [s.summary for s in steps] == ["Paint hills", "Gray", "Done"]
    assert state.history == steps
    # The planner never reframed to 16:9: the runner does it, without an extra step.
    assert image.size == (2048, 1152)


async def test_the_run_stops_at_max_steps() -> None:
    planner = Scripted(
        Step("generate", {"prompt": "hills"}, "Paint"), Step("adjust", {"contrast": 1.1}, "More")
    )
    recorder = Recorder()
    image, steps = await run_agent(_state(max_steps=4, resolution="4K"), planner, recorder)
    assert len(steps) == 4 == planner.calls
    assert [e[0] for e in recorder.events] == [1, 2, 3, 4]
    assert image.size == (4096, 2304)


async def test_finishing_straight_away_still_gives_an_image() -> None:
    source = Image.new("RGB", (300, 300), (0, 128, 0))
    image, steps = await run_agent(_state([source]), Scripted(Step("finish", {}, "")), Recorder())
    assert len(steps) == 1 and image.size == (2048, 1152)
    assert image.getpixel((1000, 500)) == (0, 128, 0)


async def test_cancel_between_steps() -> None:
    recorder = Recorder()
    planner = Scripted(Step("generate", {"prompt": "x"}, ""), Step("adjust", {"invert": True}, ""))
    state = _state()
    with pytest.raises(AgentCanceled):
        await run_agent(state, planner, recorder, canceled=lambda: len(recorder.events) >= 2)
    assert len(state.history) == 2 and len(recorder.events) == 2


async def test_tool_errors_stop_the_run() -> None:
    state = _state()
    with pytest.raises(ToolError, match="there is no image yet"):
        await run_agent(state, Scripted(Step("adjust", {"invert": True}, "")), Recorder())
    assert state.history == []


async def test_tools_run_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real_apply = tools.apply

    def spy(step: Step, state: AgentState) -> Image.Image:
        seen.append(threading.get_ident())
        return real_apply(step, state)

    monkeypatch.setattr(tools, "apply", spy)
    planner = Scripted(Step("generate", {"prompt": "x"}, ""), Step("finish", {}, ""))
    await run_agent(_state(), planner, Recorder())
    assert len(seen) == 2 and threading.get_ident() not in seen


async def test_sandbox_runs_use_the_rule_planner() -> None:
    planner = planner_for(True, {"base_url": "http://127.0.0.1:9", "model": "m"})
    assert planner.name == "builtin"
    image, steps = await run_agent(_state(), planner, Recorder())
    assert steps[0].tool == "generate" and steps[-1].tool == "finish"
    assert image.size == (2048, 1152)
