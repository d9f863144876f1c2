"""Output sizes for aspect-ratio/resolution presets."""

from __future__ import annotations

import math

ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (1, 1),
    "16:9": (16, 9),
    "9:16": (9, 16),
    "4:3": (4, 3),
    "3:4": (3, 4),
    "3:2": (3, 2),
    "2:3": (2, 3),
    "4:5": (4, 5),
    "5:4": (5, 4),
    "21:9": (21, 9),
}

RESOLUTION_LONG_SIDE: dict[str, int] = {"1K": 1024, "2K": 2048, "4K": 4096}


def output_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Return ``(width, height)`` for a preset ratio and resolution.

    The long side is the resolution's long side; the short side is rounded to the
    nearest even number because most video/image codecs dislike odd dimensions.
    """
    try:
        rw, rh = ASPECT_RATIOS[aspect_ratio]
    except KeyError:
        raise ValueError(f"unknown aspect ratio {aspect_ratio!r}") from None
    try:
        long_side = RESOLUTION_LONG_SIDE[resolution.upper()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown resolution {resolution!r}") from None
    large, small = max(rw, rh), min(rw, rh)
    short_side = max(2, 2 * round(long_side * small / large / 2))
    return (long_side, short_side) if rw >= rh else (short_side, long_side)


def aspect_of(width: int, height: int) -> str:
    """Return the name of the listed aspect ratio closest to ``width:height``."""
    if width <= 0 or height <= 0:
        raise ValueError("width and height must be positive")
    # Compare in log space so 2:1 and 1:2 are equally far from 1:1.
    target = math.log(width / height)
    return min(ASPECT_RATIOS, key=lambda name: abs(math.log(_ratio(name)) - target))


def _ratio(name: str) -> float:
    w, h = ASPECT_RATIOS[name]
    return w / h
