"""The local engine: text-to-image and image-to-image with a diffusers pipeline on this machine.

Install the extra (``pip install 'mediagate[local]'``) and point ``MEDIAGATE_LOCAL_MODEL_DIR``
at a pipeline saved with ``save_pretrained``. Nothing is downloaded: the pipeline loads with
``local_files_only``. torch and diffusers are imported on first use (through ``import_module``,
so neither the server nor mypy needs them when the engine is not configured).

One pipeline is loaded per engine, which the runtime builds once per process; the image-to-image
pipeline shares its components. Generations run one at a time in a worker thread: a pipeline and
its scheduler are not safe to share between threads, and one GPU gains nothing from overlapping.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from mediagate.catalog.schemas import Model
from mediagate.config import Settings
from mediagate.engines.base import EngineError, EngineResult, JobSpec, Output, RunContext
from mediagate.images.intake import ImageRejected, encode, open_image
from mediagate.images.sizing import aspect_of, output_size

# How long a step's progress report may take before the render gives up.
_PROGRESS_WAIT_SECONDS = 30.0


class _Stop(Exception):
    """Raised from the step callback to abandon a render (cancel, or the job was handed back)."""


@dataclass(frozen=True)
class _Render:
    prompt: str
    width: int
    height: int
    seed: int
    source: Image.Image | None


def local_engines(settings: Settings) -> list[DiffusersEngine]:
    """The engine when the operator configured a model; a missing extra or pipeline stops
    start-up rather than failing every job."""
    model_dir = settings.local_model_dir
    if model_dir is None:
        return []
    if any(importlib.util.find_spec(name) is None for name in ("torch", "diffusers")):
        raise RuntimeError(
            "MEDIAGATE_LOCAL_MODEL_DIR is set but torch/diffusers are not installed: "
            "pip install 'mediagate[local]'"
        )
    if not (model_dir / "model_index.json").is_file():
        raise RuntimeError(f"{model_dir} holds no diffusers pipeline (no model_index.json)")
    return [
        DiffusersEngine(
            model_dir,
            device=settings.local_device,
            steps=settings.local_steps,
            max_side=settings.local_max_side,
            max_pixels=settings.max_image_pixels,
        )
    ]


def job_seed(job_id: str) -> int:
    """A seed derived from the job id, so that a retried job renders the same images."""
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:8], "big") >> 1


def render_size(
    units: dict[str, Any], source: tuple[int, int] | None, max_side: int
) -> tuple[int, int]:
    """The requested aspect ratio (else the source image's, else 1:1) at the requested
    resolution, scaled down to ``max_side`` and rounded to multiples of 8 (the VAE's stride).

    >>> render_size({"aspect_ratio": "16:9", "resolution": "1K"}, None, 512)
    (512, 288)
    """
    aspect = units.get("aspect_ratio") or (aspect_of(*source) if source else "1:1")
    width, height = output_size(aspect, units.get("resolution") or "1K")
    scale = min(1.0, max_side / max(width, height))
    return _multiple_of_8(width * scale), _multiple_of_8(height * scale)


def _multiple_of_8(side: float) -> int:
    return max(8, 8 * round(side / 8))


class DiffusersEngine:
    """Serves image models routed to ``local`` from one pipeline directory.

    >>> engine = DiffusersEngine(Path("/models/sd-1.5"), steps=25, max_side=512)  # doctest: +SKIP
    >>> result = await engine.run(job, ctx)  # doctest: +SKIP
    """

    name = "local"
    offline = False

    def __init__(
        self,
        model_dir: Path,
        *,
        device: str | None = None,
        steps: int = 25,
        max_side: int = 1024,
        max_pixels: int = 40_000_000,
    ) -> None:
        self.model_dir = model_dir
        self.device = device
        self.steps = steps
        self.max_side = max_side
        self.max_pixels = max_pixels
        self.loads = 0
        self._lock = threading.Lock()
        self._text: Any = None
        self._image: Any = None
        self._torch: Any = None

    def serves(self, model: Model) -> bool:
        return model.product == "image" and any(r.provider == self.name for r in model.routes)

    async def run(self, job: JobSpec, ctx: RunContext) -> EngineResult:
        count = int(job.units.get("count") or 1)
        sources = [
            await asyncio.to_thread(self._open, await ctx.load_input(url)) for url in job.input_urls
        ]
        first = sources[0].size if sources else None
        width, height = render_size(job.units, first, self.max_side)
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        seed = job_seed(job.id)
        outputs: list[Output] = []
        for index in range(count):
            if ctx.canceled():
                raise EngineError("canceled", code="canceled")
            source = sources[index % len(sources)] if sources else None
            render = _Render(job.prompt or "", width, height, seed + index, source)

            def report(step: int, total: int, index: int = index) -> None:
                message = f"image {index + 1} of {count}: step {step} of {total}"
                fraction = (index + step / total) / count
                details = {"step": step, "steps": total, "image": index + 1}
                asyncio.run_coroutine_threadsafe(
                    ctx.progress(fraction, message, details=details), loop
                ).result(_PROGRESS_WAIT_SECONDS)

            try:
                image = await asyncio.to_thread(self._generate, render, report, stop, ctx)
            except asyncio.CancelledError:
                stop.set()  # the thread cannot be killed; it stops at its next step
                raise
            except _Stop:
                raise EngineError("canceled", code="canceled") from None
            outputs.append(Output(encode(image, "PNG"), "image/png", image.width, image.height))
            await ctx.progress((index + 1) / count, f"image {index + 1} of {count} ready")
        info: dict[str, Any] = {
            "engine": "diffusers",
            "pipeline": type(self._image if sources else self._text).__name__,
            "device": self._device(),
            "steps": self.steps,
            "seed": seed,
            "pipeline_loads": self.loads,
        }
        return EngineResult(outputs=outputs, delivered_count=len(outputs), info=info)

    def _open(self, data: bytes) -> Image.Image:
        try:
            return open_image(data, max_pixels=self.max_pixels)
        except ImageRejected as exc:
            raise EngineError(f"input image refused: {exc}", code="invalid_input_image") from exc

    def _generate(
        self,
        render: _Render,
        report: Callable[[int, int], None],
        stop: threading.Event,
        ctx: RunContext,
    ) -> Any:
        """Runs in a worker thread, one at a time; raises ``_Stop`` when asked to stop."""
        with self._lock:
            if stop.is_set() or ctx.canceled():
                raise _Stop
            self._load()
            torch = self._torch

            def on_step(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> Any:
                if stop.is_set() or ctx.canceled():
                    raise _Stop
                report(step + 1, int(getattr(pipe, "num_timesteps", 0) or self.steps))
                return kwargs

            # A CPU generator makes the noise, so a seed gives the same image on any device.
            common: dict[str, Any] = {
                "prompt": render.prompt,
                "num_inference_steps": self.steps,
                "generator": torch.Generator("cpu").manual_seed(render.seed),
                "callback_on_step_end": on_step,
            }
            with torch.inference_mode():
                if render.source is None:
                    result = self._text(width=render.width, height=render.height, **common)
                else:
                    source = ImageOps.fit(
                        render.source.convert("RGB"), (render.width, render.height)
                    )
                    result = self._image(image=source, **common)
            return result.images[0]

    def _load(self) -> None:
        """Load the pipeline once (the caller holds the lock)."""
        if self._text is not None:
            return
        try:
            torch = importlib.import_module("torch")
            diffusers = importlib.import_module("diffusers")
        except ImportError as exc:
            raise EngineError(
                "the local engine needs the extra: pip install 'mediagate[local]'",
                code="engine_unavailable",
            ) from exc
        self._torch = torch
        device = self._device()
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        try:
            text = diffusers.AutoPipelineForText2Image.from_pretrained(
                self.model_dir, dtype=dtype, local_files_only=True
            )
            text = text.to(device)
            # The same modules, so the second pipeline costs no memory.
            image = diffusers.AutoPipelineForImage2Image.from_pipe(text)
        except (OSError, ValueError) as exc:
            raise EngineError(
                f"cannot load the local model from {self.model_dir}: {exc}",
                code="engine_unavailable",
            ) from exc
        for pipe in (text, image):
            pipe.set_progress_bar_config(disable=True)
        self._text, self._image = text, image
        self.loads += 1

    def _device(self) -> str:
        if self.device is None:
            torch = self._torch or importlib.import_module("torch")
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        return self.device
