"""The image agent engine: plans steps, applies tools, reports each step with its picture.

Sandbox keys (and servers without a configured chat model) plan with the rule-based planner;
live keys plan through the OpenAI-compatible chat model of ``MEDIAGATE_AGENT_LLM_*``. The
tools run on this machine.
"""

from __future__ import annotations

import asyncio
from typing import Any

from PIL import Image

from mediagate.agent.errors import AgentCanceled, PlannerError, ToolError
from mediagate.agent.planner import LLMPlanner, Planner, RuleBasedPlanner
from mediagate.agent.runner import run_agent
from mediagate.agent.state import TOOLS, WORK_LONG_SIDE, AgentState, Step
from mediagate.catalog.schemas import Model
from mediagate.config import Settings
from mediagate.engines.base import EngineError, EngineResult, JobSpec, Output, RunContext
from mediagate.images.intake import ImageRejected, encode, open_image

PREVIEW_LONG_SIDE = 1024


class AgentEngine:
    name = "agent"
    offline = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def serves(self, model: Model) -> bool:
        return model.product == "agent"

    def planner(self, sandbox: bool) -> Planner:
        s = self.settings
        if sandbox or not (s.agent_llm_base_url and s.agent_llm_model):
            return RuleBasedPlanner()
        return LLMPlanner(
            base_url=s.agent_llm_base_url, api_key=s.agent_llm_api_key, model=s.agent_llm_model
        )

    async def run(self, job: JobSpec, ctx: RunContext) -> EngineResult:
        inputs = [await self._open(await ctx.load_input(url)) for url in job.input_urls]
        allowed = job.params.get("allowed_tools")
        try:
            state = AgentState(
                instructions=job.prompt or "",
                inputs=inputs,
                aspect_ratio=job.params.get("aspect_ratio") or "1:1",
                resolution=job.units.get("resolution") or "2K",
                max_steps=int(job.units.get("count") or 10),
                allowed_tools=frozenset(allowed) if allowed else frozenset(TOOLS),
            )
        except ValueError as exc:
            raise EngineError(str(exc), code="invalid_request") from exc
        planner = self.planner(sandbox=job.mode == "sandbox")

        async def on_step(index: int, step: Step, image: Image.Image) -> None:
            preview = await asyncio.to_thread(_preview, image)
            await ctx.progress(
                index / state.max_steps,
                step.summary,
                details={
                    "step": index,
                    "total": state.max_steps,
                    "tool": step.tool,
                    "args": _plain(step.args),
                },
                preview=preview,
            )

        try:
            final, steps = await run_agent(state, planner, on_step, ctx.canceled)
        except AgentCanceled as exc:
            raise EngineError("canceled", code="canceled") from exc
        except PlannerError as exc:
            raise EngineError(
                f"planner: {exc.message}", code="planner_error", retryable=exc.retryable
            ) from exc
        except ToolError as exc:
            raise EngineError(f"tool: {exc}", code="tool_error") from exc
        data = await asyncio.to_thread(encode, final, "PNG")
        return EngineResult(
            outputs=[Output(data, "image/png", final.width, final.height)],
            delivered_count=len(steps),
            info={
                "planner": getattr(planner, "name", type(planner).__name__),
                "steps": [{"tool": st.tool, "summary": st.summary} for st in steps],
            },
        )

    async def _open(self, data: bytes) -> Image.Image:
        try:
            return await asyncio.to_thread(
                open_image, data, max_pixels=self.settings.max_image_pixels, max_side=WORK_LONG_SIDE
            )
        except ImageRejected as exc:
            raise EngineError(f"input image refused: {exc}", code="invalid_input_image") from exc


def _preview(image: Image.Image) -> Output:
    small = image.copy()
    small.thumbnail((PREVIEW_LONG_SIDE, PREVIEW_LONG_SIDE))
    return Output(encode(small, "PNG", fast=True), "image/png", small.width, small.height)


def _plain(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if isinstance(v, str | int | float | bool | None)}
