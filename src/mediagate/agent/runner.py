"""The agent loop: plan a step, run its tool off the event loop, report it, until done."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from PIL import Image

from mediagate.agent import tools
from mediagate.agent.errors import AgentCanceled, PlannerError, ToolError
from mediagate.agent.planner import Planner
from mediagate.agent.state import AgentState, Step

__all__ = ["AgentCanceled", "PlannerError", "ToolError", "run_agent"]

OnStep = Callable[[int, Step, Image.Image], Awaitable[None]]


async def run_agent(
    state: AgentState,
    planner: Planner,
    on_step: OnStep,
    canceled: Callable[[], bool] = lambda: False,
) -> tuple[Image.Image, list[Step]]:
    """Run up to ``state.max_steps`` steps; return the final image and the steps run.

    ``on_step(index, step, image)`` is awaited after each step (index from 1) with the image the
    step made. The run ends after ``finish`` or at the step limit; the result is then brought to
    exactly ``state.target_size()`` (centre crop and resize) if the planner did not get it there,
    which is not a step. ``len(steps)`` is the number of steps run, the unit of charge.

    Raises :class:`AgentCanceled` when ``canceled()`` turns true between steps (checked before
    planning and again before running each step), :class:`PlannerError` when the planner fails
    and :class:`ToolError` when a step cannot run (the steps before it stay counted in
    ``state.history``).

    >>> image, steps = await run_agent(state, RuleBasedPlanner(), on_step)  # doctest: +SKIP
    """
    steps: list[Step] = []
    for index in range(1, state.max_steps + 1):
        if canceled():
            raise AgentCanceled(f"canceled before step {index}")
        step = await planner.next_step(state)
        if canceled():
            raise AgentCanceled(f"canceled before step {index}")
        image = await asyncio.to_thread(tools.apply, step, state)
        state.current = image
        state.history.append(step)
        steps.append(step)
        await on_step(index, step, image)
        if step.tool == "finish":
            break
    final = await asyncio.to_thread(tools.finalize, state)
    return final, steps
