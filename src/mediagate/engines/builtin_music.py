"""The builtin offline music engine: real MP3 and WAV tracks made on this machine, no upstream call.

Sandbox keys use it for every music model. Each track is a seeded piece whose tempo, key and
mood come from the prompt; a second track in one request gets its own melody.

Example::

    registry = EngineRegistry([BuiltinEngine(), BuiltinMusicEngine()])
"""

from __future__ import annotations

import asyncio
import threading

from mediagate.catalog.schemas import Model
from mediagate.engines.base import EngineError, EngineResult, JobSpec, Output, RunContext
from mediagate.engines.builtin import SANDBOX_NOTE
from mediagate.media.music import MAX_SECONDS, plan_music, render_music

DEFAULT_SECONDS = 30
MAX_TRACKS = 2


class BuiltinMusicEngine:
    name = "builtin-music"
    offline = True

    def serves(self, model: Model) -> bool:
        return model.product == "music"

    async def run(self, job: JobSpec, ctx: RunContext) -> EngineResult:
        seconds = int(job.units.get("duration") or DEFAULT_SECONDS)
        if not 1 <= seconds <= MAX_SECONDS:
            raise EngineError(
                f"duration must be between 1 and {MAX_SECONDS} seconds", code="invalid_request"
            )
        tracks = int(job.units.get("count") or 1)
        if not 1 <= tracks <= MAX_TRACKS:
            raise EngineError(
                f"count must be between 1 and {MAX_TRACKS} tracks", code="invalid_request"
            )
        if ctx.canceled():
            raise EngineError("canceled", code="canceled")

        prompt = job.prompt or ""
        plan = plan_music(prompt)  # every track shares it; only the melody differs
        outputs: list[Output] = []
        for index in range(tracks):
            mp3, wav = await self._render(prompt, seconds, index, tracks, ctx)
            outputs.append(Output(mp3, "audio/mpeg", duration_seconds=float(seconds)))
            outputs.append(Output(wav, "audio/wav", duration_seconds=float(seconds)))
        return EngineResult(
            outputs=outputs,
            delivered_count=tracks,
            info={
                "note": SANDBOX_NOTE,
                "tempo_bpm": plan.tempo_bpm,
                "key": plan.key,
                "mood": plan.mood,
            },
        )

    async def _render(
        self, prompt: str, seconds: int, index: int, tracks: int, ctx: RunContext
    ) -> tuple[bytes, bytes]:
        """Render one track on a worker thread; return ``(mp3, wav)``."""
        loop = asyncio.get_running_loop()
        abandoned = threading.Event()
        details = {"track": index + 1, "tracks": tracks}

        async def report(fraction: float) -> bool:
            done = round(fraction * seconds)
            await ctx.progress(
                (index + fraction) / tracks,
                f"track {index + 1} of {tracks}: rendered {done} of {seconds} seconds",
                details=details,
            )
            return ctx.canceled()

        def on_progress(fraction: float) -> None:
            # Runs on the render thread: progress and the cancel check happen on the loop, and
            # the render waits for them, so events arrive in order and a cancel stops it here.
            if abandoned.is_set():
                raise EngineError("canceled", code="canceled")
            if asyncio.run_coroutine_threadsafe(report(fraction), loop).result():
                raise EngineError("canceled", code="canceled")

        try:
            wav, mp3, _ = await asyncio.to_thread(
                render_music, prompt, seconds, index=index, on_progress=on_progress
            )
        except asyncio.CancelledError:
            # The thread cannot be interrupted; this stops it at the next block instead.
            abandoned.set()
            raise
        return mp3, wav
