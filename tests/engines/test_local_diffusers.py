"""The local diffusers engine, end to end over HTTP with a live key, on a tiny randomly
initialised Stable Diffusion pipeline built here (no download): sizes, image-to-image, one
pipeline load per process, per-step progress and the charge."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mediagate.engines.local_diffusers import job_seed, render_size
from tests.conftest import Server, Tenant
from tests.providers.conftest import balance, completed_info, data_url, gen, generate, png

if os.environ.get("MEDIAGATE_REQUIRE_LOCAL"):
    # `make test-local` (and CI) installed the extra: a missing one is a failure, not a skip.
    import diffusers  # noqa: F401
    import torch
else:
    pytest.importorskip("diffusers", reason="the local engine needs the extra: `make test-local`")
    torch = pytest.importorskip("torch", reason="the local engine needs the extra")

MODEL = "local/stable-diffusion"
MAX_SIDE = 128  # the tiny model renders 1024 px in ~2 s on a CPU; 128 px in milliseconds


def tiny_pipeline(root: Path) -> Path:
    """A Stable Diffusion pipeline with a few thousand random weights, saved like a real one."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    # Four blocks make the real 8x latent stride, so sizes behave as with a real model.
    vae = AutoencoderKL(
        block_out_channels=(4, 4, 4, 4),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=2,
        layers_per_block=1,
    )
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = [*letters, *(f"{c}</w>" for c in letters), "<unk>", "<|startoftext|>", "<|endoftext|>"]
    words = root / "tokenizer-source"
    words.mkdir()
    (words / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (words / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer.from_pretrained(words, model_max_length=16, local_files_only=True)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=1,
            max_position_embeddings=16,
            projection_dim=16,
            bos_token_id=len(vocab) - 2,
            eos_token_id=len(vocab) - 1,
            pad_token_id=len(vocab) - 1,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(root / "model")
    return root / "model"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture
def local(server: Server, model_dir: Path) -> Iterator[tuple[Server, Tenant]]:
    settings: dict[str, Any] = {
        "local_model_dir": model_dir,
        "local_device": "cpu",
        "local_steps": 2,
        "local_max_side": MAX_SIDE,
    }
    with server.sibling(own_database=True, **settings) as live:
        yield live, live.tenant(mode="live", credits=100)


def picture(live: Server, output: dict[str, Any]) -> Image.Image:
    got = live.client().get(output["url"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(got.content))


def test_text_to_image_renders_pngs_of_the_requested_shape(local: tuple[Server, Tenant]) -> None:
    live, t = local
    job_id = generate(t, gen(MODEL, units={"count": 2, "aspect_ratio": "16:9"}))
    job = live.wait_job(t.client, job_id)
    assert job["status"] == "completed", job
    assert job["engine"] == "local"
    assert [(o["mime_type"], o["width"], o["height"]) for o in job["outputs"]] == [
        ("image/png", 128, 72),
        ("image/png", 128, 72),
    ]
    first, second = (picture(live, o) for o in job["outputs"])
    assert first.size == (128, 72) and first.mode == "RGB"
    assert first.tobytes() != second.tobytes()  # each image has its own seed
    info = completed_info(t, job_id)
    assert info["pipeline"] == "StableDiffusionPipeline"
    assert info["device"] == "cpu" and info["steps"] == 2
    assert info["seed"] == job_seed(job_id)
    assert balance(t) == {"balance": 100 - 2 * 2, "held": 0, "available": 100 - 2 * 2}


def test_progress_is_reported_per_step(local: tuple[Server, Tenant]) -> None:
    live, t = local
    job_id = generate(t, gen(MODEL))
    assert live.wait_job(t.client, job_id)["status"] == "completed"
    steps = []
    with t.client.stream("GET", f"/v1/jobs/{job_id}/stream") as r:
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "progress":
                steps.append(json.loads(line[6:]))
            elif line.startswith("data: ") and event == "completed":
                break
    assert [(p.get("step"), p.get("steps")) for p in steps] == [(1, 2), (2, 2), (None, None)]
    assert [p["progress"] for p in steps] == [0.5, 1.0, 1.0]


def test_image_to_image_works_from_a_data_url_on_the_same_pipeline(
    local: tuple[Server, Tenant],
) -> None:
    live, t = local
    source = data_url(png(96, 64, (10, 200, 10)))
    first = generate(t, gen(MODEL, prompt="make it red"))
    assert live.wait_job(t.client, first)["status"] == "completed"
    edit = gen(
        MODEL, prompt="make it red", input_image_urls=[source], units={"aspect_ratio": "3:2"}
    )
    second = generate(t, edit)
    job = live.wait_job(t.client, second)
    assert job["status"] == "completed", job
    ((w, h),) = [(o["width"], o["height"]) for o in job["outputs"]]
    assert (w, h) == (128, 88) and picture(live, job["outputs"][0]).size == (128, 88)
    info = completed_info(t, second)
    assert info["pipeline"] == "StableDiffusionImg2ImgPipeline"
    # Two jobs, one load: the image-to-image pipeline reuses the text-to-image one's modules.
    assert completed_info(t, first)["pipeline_loads"] == info["pipeline_loads"] == 1
    assert balance(t)["balance"] == 100 - 2 * 2


def test_a_broken_input_image_fails_the_job_and_releases_the_hold(
    local: tuple[Server, Tenant],
) -> None:
    live, t = local
    job_id = generate(t, gen(MODEL, input_image_urls=[data_url(b"\x89PNG\r\n\x1a\nbroken")]))
    job = live.wait_job(t.client, job_id)
    assert job["status"] == "failed"
    assert balance(t) == {"balance": 100, "held": 0, "available": 100}


def test_sandbox_keys_keep_the_builtin_engine(local: tuple[Server, Tenant]) -> None:
    live, _ = local
    sandbox = live.tenant(credits=100)
    job = live.wait_job(sandbox.client, generate(sandbox, gen(MODEL)))
    assert job["status"] == "completed" and job["engine"] == "builtin"


def test_a_server_without_the_model_dir_does_not_offer_the_model(server: Server) -> None:
    with server.sibling(own_database=True) as live:
        t = live.tenant(mode="live", credits=100)
        r = t.client.post("/v1/generate", json=gen(MODEL))
        assert r.status_code != 200
        assert "local" in r.text


@pytest.mark.parametrize(
    ("units", "source", "size"),
    [
        ({}, None, (1024, 1024)),
        ({"aspect_ratio": "16:9"}, None, (1024, 576)),
        ({"aspect_ratio": "9:16", "resolution": "1K"}, (10, 10), (576, 1024)),
        ({}, (300, 200), (1024, 680)),
    ],
)
def test_render_size_follows_the_units_then_the_source(
    units: dict[str, Any], source: tuple[int, int] | None, size: tuple[int, int]
) -> None:
    assert render_size(units, source, 1024) == size
    w, h = render_size(units, source, 200)
    assert max(w, h) <= 200 and w % 8 == 0 and h % 8 == 0


class StepContext:
    """A worker context that records progress and asks to cancel after ``cancel_after`` steps."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.reports: list[dict[str, Any]] = []
        self.cancel_after = cancel_after

    async def progress(self, fraction: float, message: str, **kw: Any) -> None:
        self.reports.append({"fraction": fraction, "message": message, **(kw.get("details") or {})})

    async def load_input(self, url: str) -> bytes:
        raise AssertionError("no inputs here")

    async def save_provider_task_id(self, task_id: str) -> None:
        raise AssertionError("a local render has no provider task")

    def canceled(self) -> bool:
        steps = sum(1 for r in self.reports if "step" in r)
        return self.cancel_after is not None and steps >= self.cancel_after


def spec(catalog_model: Any, units: dict[str, Any]) -> Any:
    from mediagate.engines.base import JobSpec

    return JobSpec(
        id="job-1",
        workspace_id="ws",
        model=catalog_model,
        prompt="a lighthouse",
        units=units,
        input_urls=[],
        params={},
    )


@pytest.fixture(scope="module")
def sd_model() -> Any:
    from mediagate.catalog.loader import load_catalog

    model = load_catalog(None).model(MODEL)
    assert model is not None
    return model


async def test_a_cancel_stops_the_render_between_steps(model_dir: Path, sd_model: Any) -> None:
    from mediagate.engines.base import EngineError
    from mediagate.engines.local_diffusers import DiffusersEngine

    engine = DiffusersEngine(model_dir, device="cpu", steps=3, max_side=64)
    ctx = StepContext(cancel_after=1)
    with pytest.raises(EngineError) as caught:
        await engine.run(spec(sd_model, {"count": 2}), ctx)
    assert caught.value.code == "canceled"
    assert [r.get("step") for r in ctx.reports] == [1]


async def test_the_same_job_renders_the_same_image(model_dir: Path, sd_model: Any) -> None:
    from mediagate.engines.local_diffusers import DiffusersEngine

    engine = DiffusersEngine(model_dir, device="cpu", steps=2, max_side=64)
    first = await engine.run(spec(sd_model, {"aspect_ratio": "1:1"}), StepContext())
    again = await engine.run(spec(sd_model, {"aspect_ratio": "1:1"}), StepContext())
    assert first.outputs[0].data == again.outputs[0].data
    assert (first.outputs[0].width, first.outputs[0].height) == (64, 64)
    assert engine.loads == 1 and again.info["pipeline_loads"] == 1


def test_a_model_dir_without_a_pipeline_stops_start_up(tmp_path: Path) -> None:
    from mediagate.config import Settings
    from mediagate.runtime import Runtime

    settings = Settings(data_dir=tmp_path, local_model_dir=tmp_path / "nothing-here")
    with pytest.raises(RuntimeError, match="no diffusers pipeline"):
        Runtime.from_settings(settings)
