"""The builtin video engine against a recording stand-in for the worker's run context."""

from __future__ import annotations

import io
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from mediagate.catalog.schemas import Model
from mediagate.engines.base import EngineError, JobSpec
from mediagate.engines.builtin import SANDBOX_NOTE
from mediagate.engines.builtin_video import BuiltinVideoEngine
from mediagate.images.intake import encode
from tests.media.recording import RecordingContext

VIDEO = Model(
    id="sora-2",
    product="video",
    credits=10,
    inputs=["text", "image"],
    resolutions=["720p"],
    durations=[4, 8, 12],
    base_duration=4,
)
IMAGE = Model(id="gpt4o_image", product="image", credits=10)


def job(
    units: dict[str, Any], *, prompt: str = "a paper boat", inputs: list[str] | None = None
) -> JobSpec:
    return JobSpec(
        id="job_1",
        workspace_id="ws_1",
        model=VIDEO,
        prompt=prompt,
        units=units,
        input_urls=inputs or [],
        params={},
        mode="sandbox",
    )


def video_facts(data: bytes) -> tuple[str, int, int, int]:
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, stream.width, stream.height, stream.frames


def test_it_is_an_offline_engine_for_video_models() -> None:
    engine = BuiltinVideoEngine()
    assert engine.name == "builtin-video"
    assert engine.offline is True
    assert engine.serves(VIDEO)
    assert not engine.serves(IMAGE)


async def test_a_clip_and_its_poster_with_progress_per_second() -> None:
    ctx = RecordingContext()
    result = await BuiltinVideoEngine().run(
        job({"duration": 2, "resolution": "480p", "aspect_ratio": "1:1"}), ctx
    )

    clip, poster = result.outputs
    assert (clip.mime_type, clip.width, clip.height) == ("video/mp4", 480, 480)
    assert clip.duration_seconds == 2.0
    assert video_facts(clip.data) == ("h264", 480, 480, 48)
    assert (poster.mime_type, poster.width, poster.height) == ("image/png", 480, 480)
    with Image.open(io.BytesIO(poster.data)) as image:
        assert image.size == (480, 480)
    assert result.delivered_count == 1
    assert result.info == {"note": SANDBOX_NOTE, "fps": 24}
    assert ctx.events == [
        (0.5, "encoded second 1 of 2", {"second": 1, "total": 2}),
        (1.0, "encoded second 2 of 2", {"second": 2, "total": 2}),
    ]


async def test_defaults_are_16_9_at_720p() -> None:
    result = await BuiltinVideoEngine().run(job({"duration": 1}), RecordingContext())
    clip = result.outputs[0]
    assert (clip.width, clip.height, clip.duration_seconds) == (1280, 720, 1.0)
    assert video_facts(clip.data) == ("h264", 1280, 720, 24)


async def test_a_cancel_stops_the_render_at_the_next_second() -> None:
    ctx = RecordingContext(cancel_at=1)
    with pytest.raises(EngineError) as caught:
        await BuiltinVideoEngine().run(job({"duration": 3, "resolution": "480p"}), ctx)
    assert caught.value.code == "canceled"
    assert [details for _, _, details in ctx.events] == [{"second": 1, "total": 3}]


async def test_a_job_canceled_before_it_starts_renders_nothing() -> None:
    ctx = RecordingContext(cancel_at=0)
    with pytest.raises(EngineError) as caught:
        await BuiltinVideoEngine().run(job({"duration": 1, "resolution": "480p"}), ctx)
    assert caught.value.code == "canceled"
    assert ctx.events == []


async def test_image_to_video_films_the_first_input() -> None:
    orange = Image.new("RGB", (640, 480), (230, 120, 20))
    ctx = RecordingContext(inputs={"mem://a": encode(orange, "PNG"), "mem://b": b"unused"})
    result = await BuiltinVideoEngine().run(
        job({"duration": 1, "resolution": "480p"}, inputs=["mem://a", "mem://b"]), ctx
    )
    assert ctx.loaded == ["mem://a"]
    poster = result.outputs[1]
    with Image.open(io.BytesIO(poster.data)) as image:
        top = np.asarray(image.convert("RGB"))[:240].reshape(-1, 3)
    assert np.abs(top.mean(axis=0) - (230, 120, 20)).max() < 6


async def test_an_unreadable_input_is_refused() -> None:
    ctx = RecordingContext(inputs={"mem://x": b"not an image"})
    with pytest.raises(EngineError) as caught:
        await BuiltinVideoEngine().run(job({"duration": 1}, inputs=["mem://x"]), ctx)
    assert caught.value.code == "invalid_input_image"


@pytest.mark.parametrize(
    "units",
    [{"duration": 1, "resolution": "4K"}, {"duration": 1, "aspect_ratio": "7:3"}, {"duration": 99}],
)
async def test_impossible_units_are_refused(units: dict[str, Any]) -> None:
    with pytest.raises(EngineError) as caught:
        await BuiltinVideoEngine().run(job(units), RecordingContext())
    assert caught.value.code == "invalid_request"
