"""Tests for output sizing presets."""

from __future__ import annotations

import pytest

from mediagate.images.sizing import ASPECT_RATIOS, RESOLUTION_LONG_SIDE, aspect_of, output_size


@pytest.mark.parametrize(
    ("ratio", "resolution", "expected"),
    [
        ("1:1", "1K", (1024, 1024)),
        ("1:1", "4K", (4096, 4096)),
        ("16:9", "1K", (1024, 576)),
        ("16:9", "4K", (4096, 2304)),
        ("9:16", "2K", (1152, 2048)),
        ("4:3", "1K", (1024, 768)),
        ("3:4", "2K", (1536, 2048)),
        ("3:2", "1K", (1024, 682)),
        ("2:3", "1K", (682, 1024)),
        ("4:5", "1K", (820, 1024)),
        ("5:4", "1K", (1024, 820)),
        ("21:9", "1K", (1024, 438)),
    ],
)
def test_output_size(ratio: str, resolution: str, expected: tuple[int, int]) -> None:
    assert output_size(ratio, resolution) == expected


@pytest.mark.parametrize("ratio", sorted(ASPECT_RATIOS))
@pytest.mark.parametrize("resolution", sorted(RESOLUTION_LONG_SIDE))
def test_every_preset_is_even_and_close_to_ratio(ratio: str, resolution: str) -> None:
    w, h = output_size(ratio, resolution)
    assert max(w, h) == RESOLUTION_LONG_SIDE[resolution]
    assert w % 2 == 0 and h % 2 == 0
    rw, rh = ASPECT_RATIOS[ratio]
    assert abs(w / h - rw / rh) < 0.01
    assert aspect_of(w, h) == ratio


def test_all_required_ratios_present() -> None:
    required = {"1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "4:5", "5:4", "21:9"}
    assert required <= set(ASPECT_RATIOS)


@pytest.mark.parametrize(("ratio", "resolution"), [("7:5", "1K"), ("16:9", "8K"), ("", "")])
def test_unknown_values_raise(ratio: str, resolution: str) -> None:
    with pytest.raises(ValueError):
        output_size(ratio, resolution)


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1920, 1080), "16:9"), ((1000, 1000), "1:1"), ((1080, 1350), "4:5"), ((2560, 1080), "21:9")],
)
def test_aspect_of_nearest(size: tuple[int, int], expected: str) -> None:
    assert aspect_of(*size) == expected


def test_aspect_of_rejects_non_positive() -> None:
    with pytest.raises(ValueError):
        aspect_of(0, 10)
