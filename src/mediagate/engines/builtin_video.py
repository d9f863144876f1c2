"""The builtin offline video engine: a real H.264 MP4 made on this machine, no upstream call.

Sandbox keys use it for every video model. The clip is a slow camera move over a sandbox still
(or over the first input image, for image-to-video), and every frame says it is a sandbox render.

Example::

    registry = EngineRegistry([BuiltinEngine(), BuiltinVideoEngine()])
"""

from __future__ import annotations

import asyncio
import threading

from PIL import Image

from mediagate.catalog.schemas import Model
from mediagate.engines.base import EngineError, EngineResult, JobSpec, Output, RunContext
from mediagate.engines.builtin import SANDBOX_NOTE
from mediagate.images.intake import ImageRejected, open_image
from mediagate.media.video import FPS, MAX_SECONDS, render_video, video_size

DEFAULT_SECONDS = 5


class BuiltinVideoEngine:
    name = "builtin-video"
    offline = True

    def __init__(self, *, max_pixels: int = 40_000_000) -> None:
        self.max_pixels = max_pixels

    def serves(self, model: Model) -> bool:
        return model.product == "video"

    async def run(self, job: JobSpec, ctx: RunContext) -> EngineResult:
        seconds = int(job.units.get("duration") or job.model.base_duration or DEFAULT_SECONDS)
        if not 1 <= seconds <= MAX_SECONDS:
            raise EngineError(
                f"duration must be between 1 and {MAX_SECONDS} seconds", code="invalid_request"
            )
        try:
            width, height = video_size(
                job.units.get("aspect_ratio") or "16:9", job.units.get("resolution") or "720p"
            )
        except ValueError as exc:
            raise EngineError(str(exc), code="invalid_request") from exc
        if ctx.canceled():
            raise EngineError("canceled", code="canceled")

        still: Image.Image | None = None
        if job.input_urls:
            source = await ctx.load_input(job.input_urls[0])
            still = await asyncio.to_thread(self._open, source)

        loop = asyncio.get_running_loop()
        abandoned = threading.Event()

        async def report(second: int) -> bool:
            await ctx.progress(
                second / seconds,
                f"encoded second {second} of {seconds}",
                details={"second": second, "total": seconds},
            )
            return ctx.canceled()

        def on_second(second: int) -> None:
            # Runs on the render thread: progress and the cancel check happen on the loop, and
            # the render waits for them, so events arrive in order and a cancel stops it here.
            if abandoned.is_set():
                raise EngineError("canceled", code="canceled")
            if asyncio.run_coroutine_threadsafe(report(second), loop).result():
                raise EngineError("canceled", code="canceled")

        try:
            mp4, poster = await asyncio.to_thread(
                render_video,
                job.prompt or "",
                seconds,
                width,
                height,
                fps=FPS,
                on_second=on_second,
                still=still,
            )
        except asyncio.CancelledError:
            # The thread cannot be interrupted; this stops it at the next second instead.
            abandoned.set()
            raise
        return EngineResult(
            outputs=[
                Output(mp4, "video/mp4", width, height, duration_seconds=float(seconds)),
                Output(poster, "image/png", width, height),
            ],
            delivered_count=1,
            info={"note": SANDBOX_NOTE, "fps": FPS},
        )

    def _open(self, source: bytes) -> Image.Image:
        try:
            return open_image(source, max_pixels=self.max_pixels)
        except ImageRejected as exc:
            raise EngineError(f"input image refused: {exc}", code="invalid_input_image") from exc
