"""The builtin music engine against a recording stand-in for the worker's run context."""

from __future__ import annotations

import io
import wave
from typing import Any

import pytest

from mediagate.catalog.schemas import Model
from mediagate.engines.base import EngineError, JobSpec
from mediagate.engines.builtin import SANDBOX_NOTE
from mediagate.engines.builtin_music import BuiltinMusicEngine
from mediagate.media.music import plan_music
from tests.media.recording import RecordingContext

MUSIC = Model(id="V5", product="music", credits=30, inputs=["text"], durations=[30, 60, 120, 240])
VIDEO = Model(id="sora-2", product="video", credits=10, inputs=["text"], durations=[4])
PROMPT = "a sad piano song in D minor"


def job(units: dict[str, Any], *, prompt: str = PROMPT) -> JobSpec:
    return JobSpec(
        id="job_1",
        workspace_id="ws_1",
        model=MUSIC,
        prompt=prompt,
        units=units,
        input_urls=[],
        params={},
        mode="sandbox",
    )


def wav_frames(data: bytes) -> int:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnframes()


def test_it_is_an_offline_engine_for_music_models() -> None:
    engine = BuiltinMusicEngine()
    assert engine.name == "builtin-music"
    assert engine.offline is True
    assert engine.serves(MUSIC)
    assert not engine.serves(VIDEO)


async def test_one_track_as_mp3_and_wav_with_progress() -> None:
    ctx = RecordingContext()
    result = await BuiltinMusicEngine().run(job({"duration": 2}), ctx)

    mp3, wav = result.outputs
    assert (mp3.mime_type, mp3.duration_seconds) == ("audio/mpeg", 2.0)
    assert (wav.mime_type, wav.duration_seconds) == ("audio/wav", 2.0)
    assert mp3.data[:3] == b"ID3" or mp3.data[0] == 0xFF
    assert wav_frames(wav.data) == 2 * 44100
    assert result.delivered_count == 1
    plan = plan_music(PROMPT)
    assert result.info == {
        "note": SANDBOX_NOTE,
        "tempo_bpm": plan.tempo_bpm,
        "key": "D minor",
        "mood": "sad",
    }
    details = {"track": 1, "tracks": 1}
    assert ctx.events == [
        (0.5, "track 1 of 1: rendered 1 of 2 seconds", details),
        (1.0, "track 1 of 1: rendered 2 of 2 seconds", details),
    ]


async def test_two_tracks_differ_and_progress_spans_both() -> None:
    ctx = RecordingContext()
    result = await BuiltinMusicEngine().run(job({"duration": 1, "count": 2}), ctx)

    assert [o.mime_type for o in result.outputs] == ["audio/mpeg", "audio/wav"] * 2
    assert result.delivered_count == 2
    first_wav, second_wav = result.outputs[1].data, result.outputs[3].data
    assert first_wav != second_wav
    assert wav_frames(first_wav) == wav_frames(second_wav) == 44100
    assert [(f, d) for f, _, d in ctx.events] == [
        (0.5, {"track": 1, "tracks": 2}),
        (1.0, {"track": 2, "tracks": 2}),
    ]


async def test_the_default_is_thirty_seconds() -> None:
    result = await BuiltinMusicEngine().run(job({}), RecordingContext())
    assert result.outputs[0].duration_seconds == 30.0
    assert wav_frames(result.outputs[1].data) == 30 * 44100


async def test_a_cancel_stops_the_render_at_the_next_block() -> None:
    ctx = RecordingContext(cancel_at=1)
    with pytest.raises(EngineError) as caught:
        await BuiltinMusicEngine().run(job({"duration": 3, "count": 2}), ctx)
    assert caught.value.code == "canceled"
    assert len(ctx.events) == 1


async def test_a_job_canceled_before_it_starts_renders_nothing() -> None:
    ctx = RecordingContext(cancel_at=0)
    with pytest.raises(EngineError) as caught:
        await BuiltinMusicEngine().run(job({"duration": 2}), ctx)
    assert caught.value.code == "canceled"
    assert ctx.events == []


@pytest.mark.parametrize(
    "units", [{"duration": -5}, {"duration": 999}, {"duration": 2, "count": 3}]
)
async def test_impossible_units_are_refused(units: dict[str, Any]) -> None:
    with pytest.raises(EngineError) as caught:
        await BuiltinMusicEngine().run(job(units), RecordingContext())
    assert caught.value.code == "invalid_request"
