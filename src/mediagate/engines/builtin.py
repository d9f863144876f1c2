"""The builtin offline engine: real files made on this machine, no upstream call.

Sandbox keys use it for every model it serves, and every output says it is a sandbox render.
"""

from __future__ import annotations

import asyncio

from mediagate.catalog.schemas import Model
from mediagate.engines.base import EngineError, EngineResult, JobSpec, Output, RunContext
from mediagate.images import builtin as painter
from mediagate.images.intake import ImageRejected, encode, open_image
from mediagate.images.sizing import output_size

SANDBOX_NOTE = "sandbox render by the builtin engine; no provider was called"


class BuiltinEngine:
    name = "builtin"
    offline = True

    def __init__(self, *, max_pixels: int = 40_000_000) -> None:
        self.max_pixels = max_pixels

    def serves(self, model: Model) -> bool:
        return model.product == "image"

    async def run(self, job: JobSpec, ctx: RunContext) -> EngineResult:
        count = int(job.units.get("count") or 1)
        width, height = output_size(
            job.units.get("aspect_ratio") or "1:1", job.units.get("resolution") or "1K"
        )
        sources = [await ctx.load_input(url) for url in job.input_urls]
        outputs: list[Output] = []
        applied: list[list[str]] = []
        for index in range(count):
            if ctx.canceled():
                raise EngineError("canceled", code="canceled")
            if sources:
                out, ops = await asyncio.to_thread(
                    self._edit,
                    sources[index % len(sources)],
                    job.prompt or "",
                    job.units.get("aspect_ratio"),
                )
                applied.append(ops)
            else:
                out = await asyncio.to_thread(self._render, job.prompt or "", width, height, index)
            outputs.append(out)
            await ctx.progress((index + 1) / count, f"image {index + 1} of {count} ready")
        info: dict[str, object] = {"note": SANDBOX_NOTE}
        if sources:
            info["edits"] = applied
        return EngineResult(outputs=outputs, delivered_count=len(outputs), info=info)

    @staticmethod
    def _render(prompt: str, width: int, height: int, index: int) -> Output:
        image = painter.render(prompt, width, height, index=index)
        return Output(encode(image, "PNG"), "image/png", image.width, image.height)

    def _edit(self, source: bytes, prompt: str, aspect: str | None) -> tuple[Output, list[str]]:
        try:
            image = open_image(source, max_pixels=self.max_pixels)
        except ImageRejected as exc:
            raise EngineError(f"input image refused: {exc}", code="invalid_input_image") from exc
        edited, ops = painter.apply_edits(image, prompt, aspect_ratio=aspect)
        edited = painter.mark_sandbox(edited, prompt)
        return Output(encode(edited, "PNG"), "image/png", edited.width, edited.height), ops
