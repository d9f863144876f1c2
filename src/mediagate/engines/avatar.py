"""The avatar engine (offline): a portrait built from a reference — the caller's own, or one
picked from the library shipped with the package — over a background painted from the prompt.

Hints it uses: ``style`` (``noir``/``monochrome``, ``vintage``/``sepia``, ``vivid``),
``composition`` (``headshot``, ``bust``), ``palette`` and ``cultural_context`` (words that steer
the background's colours). Other keys are accepted and ignored.
"""

from __future__ import annotations

import asyncio
from typing import Any

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from mediagate.avatars.library import FOLDER as LIBRARY
from mediagate.catalog.schemas import Model
from mediagate.engines.base import EngineError, EngineResult, JobSpec, Output, RunContext
from mediagate.images import builtin as painter
from mediagate.images.intake import ImageRejected, encode, open_image

_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_SCALE = {"headshot": 0.82, "bust": 0.66}


class AvatarEngine:
    name = "avatar"
    offline = True

    def __init__(self, *, max_pixels: int = 40_000_000) -> None:
        self.max_pixels = max_pixels

    def serves(self, model: Model) -> bool:
        return model.product == "avatar"

    async def run(self, job: JobSpec, ctx: RunContext) -> EngineResult:
        params = job.params
        library_id = params.get("library_reference")
        if job.input_urls:
            source = await ctx.load_input(job.input_urls[0])
        elif library_id:
            source = (LIBRARY / f"{library_id}.png").read_bytes()
        else:
            raise EngineError("no reference to work from", code="invalid_request")
        if ctx.canceled():
            raise EngineError("canceled", code="canceled")
        output = params.get("output") or {}
        image = await asyncio.to_thread(
            self._render,
            source,
            job.prompt or "",
            params.get("hints") or {},
            output,
            job.mode == "sandbox",
        )
        fmt = output.get("format", "png")
        data = await asyncio.to_thread(encode, image, fmt.upper())
        await ctx.progress(1.0, "avatar ready")
        return EngineResult(
            [Output(data, _MIME[fmt], image.width, image.height)],
            delivered_count=1,
            info={
                "reference": "library" if not job.input_urls else "provided",
                "library_reference": library_id,
            },
        )

    def _render(
        self,
        source: bytes,
        prompt: str,
        hints: dict[str, Any],
        output: dict[str, Any],
        sandbox: bool,
    ) -> Image.Image:
        width, height = (int(v) for v in str(output.get("size", "1024x1024")).split("x"))
        try:
            reference = open_image(source, max_pixels=self.max_pixels, max_side=2048)
        except ImageRejected as exc:
            raise EngineError(
                f"reference image refused: {exc}", code="invalid_input_image"
            ) from exc
        steer = " ".join(str(hints.get(k, "")) for k in ("palette", "cultural_context"))
        background = output.get("background", "opaque")
        if background == "transparent":
            canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        else:
            canvas = painter.paint(f"{prompt} {steer}", width, height).convert("RGBA")
        side = int(min(width, height) * _SCALE.get(str(hints.get("composition")), 0.74))
        face = ImageOps.fit(reference.convert("RGB"), (side, side))
        face = _styled(face, str(hints.get("style", "")).lower())
        mask = Image.new("L", (side, side), 0)
        ImageDraw.Draw(mask).ellipse((0, 0, side - 1, side - 1), fill=255)
        canvas.paste(face, ((width - side) // 2, (height - side) // 2), mask)
        if sandbox:
            canvas = painter.mark_sandbox(canvas, prompt)
        return canvas if background == "transparent" else canvas.convert("RGB")


def _styled(face: Image.Image, style: str) -> Image.Image:
    if style in ("noir", "monochrome", "black and white"):
        return ImageOps.grayscale(face).convert("RGB")
    if style in ("vintage", "sepia", "retro"):
        gray = ImageOps.grayscale(face)
        return ImageOps.colorize(gray, (60, 35, 15), (255, 235, 200))
    if style in ("vivid", "pop"):
        return ImageEnhance.Color(face).enhance(1.6)
    return face
