"""Sandbox video: one builtin still, filmed with a slow seeded camera move, encoded as H.264 MP4.

Nothing here calls a model. The clip is a Ken Burns shot (a pan plus a slow zoom) over a picture
from the sandbox painter, or over an input image for image-to-video. The path is seeded by the
prompt, so the same request gives the same frames, and every frame carries the
"MEDIAGATE SANDBOX" band so the clip can never be mistaken for a real generation.

Example::

    mp4, poster_png = render_video("a red fox at sunset", 5, *video_size("16:9"))
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import tempfile
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps

from mediagate.images import builtin as painter
from mediagate.images.intake import encode
from mediagate.images.sizing import ASPECT_RATIOS

FPS = 24
MAX_SECONDS = 60
RESOLUTION_SHORT_SIDE: dict[str, int] = {"480p": 480, "720p": 720, "1080p": 1080}
# The still is this much larger than the frame so the camera has room to move.
CAMERA_MARGIN = 1.25
# The tightest zoom, as a fraction of the still: never crop in so far that the still's
# upscaling shows.
_CLOSEST = 1.02
_CRF = 23
_PRESET = "veryfast"
# Frames made ahead on a helper thread: the resize costs about as much as the encode, and both
# release the GIL, so overlapping them cuts the wall time by about a quarter.
_LOOKAHEAD = 2

Box = tuple[float, float, float, float]


def video_size(aspect_ratio: str, resolution: str = "720p") -> tuple[int, int]:
    """Return ``(width, height)`` for a ratio at a resolution class (the short side, e.g. 720p).

    The long side is rounded to an even number: H.264 in yuv420p needs even dimensions.
    """
    try:
        rw, rh = ASPECT_RATIOS[aspect_ratio]
    except KeyError:
        raise ValueError(f"unknown aspect ratio {aspect_ratio!r}") from None
    try:
        short = RESOLUTION_SHORT_SIDE[resolution.lower()]
    except (KeyError, AttributeError):
        known = ", ".join(RESOLUTION_SHORT_SIDE)
        raise ValueError(f"unknown video resolution {resolution!r} (use {known})") from None
    long = 2 * round(short * max(rw, rh) / min(rw, rh) / 2)
    return (long, short) if rw >= rh else (short, long)


VIDEO_SIZES: dict[str, tuple[int, int]] = {ratio: video_size(ratio) for ratio in ASPECT_RATIOS}
"""720p-class ``(width, height)`` for every aspect ratio the catalog allows."""


def _uniforms(prompt: str, n: int) -> list[float]:
    # SHA-256 rather than a numpy RNG, whose streams may change between releases.
    digest = hashlib.sha256(b"mediagate-video-camera\x00" + prompt.encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in range(0, 4 * n, 4)]


def _ease(t: float) -> float:
    """Half linear, half cosine: gentle at the ends without ever standing still."""
    return 0.5 * t + 0.5 * (0.5 - 0.5 * math.cos(math.pi * t))


def camera_path(
    prompt: str, frames: int, frame_size: tuple[int, int], still_size: tuple[int, int]
) -> Iterator[Box]:
    """Yield, per frame, the ``(left, top, right, bottom)`` window of the still to show.

    The window keeps the frame's aspect ratio, zooms in or out between the whole still and
    :data:`_CLOSEST`, and drifts across the room left over, all along one eased path.
    """
    width, height = frame_size
    still_w, still_h = still_size
    widest = min(still_w / width, still_h / height)
    r = _uniforms(prompt, 7)
    closest = min(widest, _CLOSEST + 0.06 * r[0])
    zoom_from, zoom_to = (widest, closest) if r[1] < 0.5 else (closest, widest)
    # Where the window sits in the room it has, 0 = left/top edge, 1 = right/bottom edge.
    x_from, x_to = 0.3 * r[2], 1.0 - 0.3 * r[3]
    y_from, y_to = 0.3 * r[4], 1.0 - 0.3 * r[5]
    if r[6] < 0.5:
        x_from, x_to = x_to, x_from
    for i in range(frames):
        e = _ease(i / (frames - 1)) if frames > 1 else 0.0
        zoom = zoom_from + (zoom_to - zoom_from) * e
        win_w, win_h = width * zoom, height * zoom
        left = (still_w - win_w) * (x_from + (x_to - x_from) * e)
        top = (still_h - win_h) * (y_from + (y_to - y_from) * e)
        yield left, top, min(still_w, left + win_w), min(still_h, top + win_h)


def still_size(width: int, height: int) -> tuple[int, int]:
    """The size of the still that a ``width`` x ``height`` clip is filmed from."""
    return round(width * CAMERA_MARGIN), round(height * CAMERA_MARGIN)


def _prepare_still(still: Image.Image | None, prompt: str, size: tuple[int, int]) -> Image.Image:
    if still is None:
        # Unmarked on purpose: the band goes on each frame, where the camera cannot move it.
        return painter.paint(prompt, size[0], size[1])
    if still.mode != "RGB":
        rgba = still.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        still = flat
    return ImageOps.fit(still, size, Image.Resampling.LANCZOS)


def render_video(
    prompt: str,
    seconds: int,
    width: int,
    height: int,
    *,
    fps: int = FPS,
    on_second: Callable[[int], None] | None = None,
    still: Image.Image | None = None,
) -> tuple[bytes, bytes]:
    """Render a sandbox clip; return ``(mp4 bytes, poster PNG bytes)``.

    The clip is exactly ``seconds * fps`` frames of H.264 (yuv420p) in an MP4 with the index up
    front (``+faststart``). ``still`` (image-to-video) replaces the painted picture and is
    cover-cropped to the frame's ratio. ``on_second(n)`` is called after the frames of second
    ``n`` (1-based) have gone to the encoder; an exception it raises stops the render.
    The poster is the first frame.
    """
    if not 1 <= seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be between 1 and {MAX_SECONDS}")
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError("width and height must be positive and even")
    if fps <= 0:
        raise ValueError("fps must be positive")
    size = still_size(width, height)
    picture = _prepare_still(still, prompt, size)
    boxes = camera_path(prompt, seconds * fps, (width, height), size)
    poster = b""
    # Faststart rewrites the file after the last frame, which FFmpeg does by reopening it by
    # name, so the clip goes through a temporary file rather than a BytesIO.
    with tempfile.TemporaryDirectory(prefix="mediagate-video-") as tmp:
        path = Path(tmp) / "clip.mp4"
        with (
            av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as out,
            contextlib.closing(_frames(picture, boxes, (width, height), prompt)) as frames,
        ):
            stream = out.add_stream("libx264", rate=fps)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(_CRF), "preset": _PRESET}
            stream.codec_context.gop_size = 2 * fps  # a keyframe every two seconds
            for index, frame in enumerate(frames):
                if index == 0:
                    poster = encode(frame, "PNG")
                video_frame = av.VideoFrame.from_ndarray(np.asarray(frame), format="rgb24")
                video_frame.pts = index
                out.mux(stream.encode(video_frame))
                if on_second is not None and (index + 1) % fps == 0:
                    on_second((index + 1) // fps)
            out.mux(stream.encode(None))
        return path.read_bytes(), poster


def _frames(
    picture: Image.Image, boxes: Iterator[Box], size: tuple[int, int], prompt: str
) -> Generator[Image.Image, None, None]:
    """Yield the marked frames in order, making the next few on a helper thread."""

    def make(box: Box) -> Image.Image:
        frame = picture.resize(size, Image.Resampling.BILINEAR, box=box)
        return painter.mark_sandbox(frame, prompt)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mediagate-video") as pool:
        ahead: deque[Future[Image.Image]] = deque(
            pool.submit(make, box) for box in islice(boxes, _LOOKAHEAD)
        )
        while ahead:
            frame = ahead.popleft().result()
            box = next(boxes, None)
            if box is not None:
                ahead.append(pool.submit(make, box))
            yield frame
