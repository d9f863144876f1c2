"""The sandbox video renderer, checked by reading its files back with PyAV."""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np
import pytest
from PIL import Image

from mediagate.images.builtin import sandbox_band
from mediagate.images.sizing import ASPECT_RATIOS
from mediagate.media.video import VIDEO_SIZES, render_video, video_size

# A prompt with no yellow in its palette, so yellow pixels can only come from the sandbox band.
PROMPT = "deep blue ocean at night"


@dataclass
class Clip:
    format_names: list[str]
    codec: str
    pix_fmt: str
    width: int
    height: int
    stream_frames: int
    stream_seconds: float
    container_seconds: float
    frames: list[np.ndarray]


def probe(mp4: bytes) -> Clip:
    with av.open(io.BytesIO(mp4), mode="r") as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        assert container.duration is not None
        clip = Clip(
            format_names=container.format.name.split(","),
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt or "",
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            stream_frames=stream.frames,
            stream_seconds=float(stream.duration * stream.time_base),
            container_seconds=container.duration / av.time_base,
            frames=[f.to_ndarray(format="rgb24") for f in container.decode(video=0)],
        )
    return clip


def above_band(frame: np.ndarray) -> np.ndarray:
    top = sandbox_band(frame.shape[1], frame.shape[0])[1]
    return frame[:top].astype(np.int16)


def yellow_in_band(frame: np.ndarray) -> int:
    top = sandbox_band(frame.shape[1], frame.shape[0])[1]
    band = frame[top:].astype(np.int16)
    r, g, b = band[..., 0], band[..., 1], band[..., 2]
    return int(np.count_nonzero((r > 200) & (g > 140) & (b < 90)))


@pytest.fixture(scope="module")
def clip_720p() -> tuple[Clip, bytes, bytes, list[int]]:
    seconds_seen: list[int] = []
    mp4, poster = render_video(PROMPT, 5, 1280, 720, on_second=seconds_seen.append)
    return probe(mp4), mp4, poster, seconds_seen


@pytest.fixture(scope="module")
def clip_480p() -> Clip:
    return probe(render_video(PROMPT, 2, *video_size("16:9", "480p"))[0])


def test_sizes_are_720p_class_and_even() -> None:
    assert VIDEO_SIZES["16:9"] == (1280, 720)
    assert VIDEO_SIZES["9:16"] == (720, 1280)
    assert VIDEO_SIZES["1:1"] == (720, 720)
    assert VIDEO_SIZES["4:3"] == (960, 720)
    assert VIDEO_SIZES["3:4"] == (720, 960)
    assert VIDEO_SIZES["21:9"] == (1680, 720)
    assert set(VIDEO_SIZES) == set(ASPECT_RATIOS)
    for resolution, short in (("480p", 480), ("720p", 720), ("1080p", 1080)):
        for ratio in ASPECT_RATIOS:
            width, height = video_size(ratio, resolution)
            assert min(width, height) == short
            assert width % 2 == 0 and height % 2 == 0
    assert video_size("16:9", "1080p") == (1920, 1080)
    assert video_size("16:9", "480p") == (854, 480)


@pytest.mark.parametrize(("ratio", "resolution"), [("7:3", "720p"), ("16:9", "4K")])
def test_unknown_sizes_are_refused(ratio: str, resolution: str) -> None:
    with pytest.raises(ValueError, match="unknown"):
        video_size(ratio, resolution)


def test_a_5s_720p_clip_is_h264_mp4_with_exact_frames_and_duration(
    clip_720p: tuple[Clip, bytes, bytes, list[int]],
) -> None:
    clip, mp4, poster, seconds_seen = clip_720p
    assert "mp4" in clip.format_names
    assert (clip.codec, clip.pix_fmt) == ("h264", "yuv420p")
    assert (clip.width, clip.height) == (1280, 720)
    assert len(clip.frames) == clip.stream_frames == 5 * 24
    assert clip.stream_seconds == pytest.approx(5.0, abs=0.05)
    assert clip.container_seconds == pytest.approx(5.0, abs=0.05)
    # +faststart: the index comes before the media, so players can start before the end.
    assert mp4.index(b"moov") < mp4.index(b"mdat")
    assert seconds_seen == [1, 2, 3, 4, 5]
    with Image.open(io.BytesIO(poster)) as image:
        assert (image.format, image.size) == ("PNG", (1280, 720))


@pytest.mark.parametrize(("ratio", "size"), [("9:16", (480, 854)), ("1:1", (480, 480))])
def test_size_follows_the_aspect_ratio(ratio: str, size: tuple[int, int]) -> None:
    mp4, _ = render_video(PROMPT, 1, *video_size(ratio, "480p"))
    clip = probe(mp4)
    assert (clip.width, clip.height) == size
    assert len(clip.frames) == 24


def test_the_camera_moves_smoothly(clip_480p: Clip) -> None:
    frames = [above_band(f) for f in clip_480p.frames]
    assert len(frames) == 48
    assert np.abs(frames[-1] - frames[0]).mean() > 2.0
    steps = [float(np.abs(b - a).mean()) for a, b in zip(frames, frames[1:], strict=False)]
    assert min(steps) > 0.0, "a frame repeats the one before it"
    assert max(steps) < 2.0, "the camera jumps"


def test_every_frame_carries_the_sandbox_band(clip_480p: Clip) -> None:
    width = clip_480p.width
    for frame in clip_480p.frames:
        # The band's yellow rule runs the full width; the title adds more yellow on top.
        assert yellow_in_band(frame) > 2 * width
        assert np.count_nonzero(above_band(frame)[..., 0] > 200) == 0


def test_the_same_prompt_gives_the_same_poster() -> None:
    size = video_size("16:9", "480p")
    _, first = render_video("a lighthouse", 1, *size)
    _, again = render_video("a lighthouse", 1, *size)
    _, other = render_video("a windmill", 1, *size)
    assert first == again
    assert first != other


def test_a_still_is_filmed_instead_of_a_painting() -> None:
    # Green with a soft ramp, so the camera has something to move over.
    ramp = np.linspace(0, 60, 640, dtype=np.float32)[None, :, None]
    base = np.array([30, 170, 70], dtype=np.float32)
    pixels = np.clip(base + ramp * np.array([1, 0, 1]), 0, 255).astype(np.uint8)
    still = Image.fromarray(np.repeat(pixels, 400, axis=0), "RGB")
    mp4, poster = render_video(PROMPT, 1, *video_size("4:3", "480p"), still=still)
    with Image.open(io.BytesIO(poster)) as image:
        mean = above_band(np.asarray(image.convert("RGB"))).reshape(-1, 3).mean(axis=0)
    assert mean[1] > 150 and mean[0] < 110 and mean[2] < 130, mean
    clip = probe(mp4)
    assert yellow_in_band(clip.frames[-1]) > 2 * clip.width


def test_a_transparent_still_is_flattened() -> None:
    still = Image.new("RGBA", (300, 300), (0, 0, 255, 0))
    _, poster = render_video("", 1, 480, 480, still=still)
    with Image.open(io.BytesIO(poster)) as image:
        assert above_band(np.asarray(image.convert("RGB"))).min() > 240


def test_on_second_can_stop_the_render() -> None:
    seen: list[int] = []

    def stop(second: int) -> None:
        seen.append(second)
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        render_video(PROMPT, 3, *video_size("1:1", "480p"), on_second=stop)
    assert seen == [1]


@pytest.mark.parametrize(
    ("seconds", "width", "height"), [(0, 480, 480), (61, 480, 480), (1, 481, 480)]
)
def test_bad_arguments_are_refused(seconds: int, width: int, height: int) -> None:
    with pytest.raises(ValueError):
        render_video(PROMPT, seconds, width, height)
