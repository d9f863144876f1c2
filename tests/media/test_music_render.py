"""The sandbox music renderer: the plan it reads from a prompt, and its files read back."""

from __future__ import annotations

import io
import wave

import av
import numpy as np
import pytest

from mediagate.media.music import MAX_SECONDS, plan_music, render_music

RATE = 44100


def wav_samples(data: bytes) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """``((channels, sample width, rate, frames), samples as an (n, channels) float array)``."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        facts = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes())
        raw = wav.readframes(wav.getnframes())
    samples = np.frombuffer(raw, dtype="<i2").reshape(-1, facts[0]) / 32768
    return facts, samples


def mp3_facts(data: bytes) -> tuple[str, str, int, int, float, float]:
    """``(format, codec, channels, rate, container seconds, decoded seconds)``."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        assert container.duration is not None
        decoded = sum(frame.samples for frame in container.decode(stream))
        return (
            container.format.name,
            stream.codec_context.name,
            stream.codec_context.channels,
            stream.rate,
            container.duration / 1_000_000,
            decoded / stream.rate,
        )


@pytest.mark.parametrize(
    ("prompt", "tempo", "key"),
    [
        ("a 128 bpm house track in D minor", 128, "D minor"),
        ("slow jazz ballad, 72 BPM, Bb major", 72, "Bb major"),
        ("a waltz in F# minor at 90 bpm", 90, "F# minor"),
        ("something in a minor at 999 bpm", 220, "A minor"),
    ],
)
def test_explicit_tempo_and_key_win(prompt: str, tempo: int, key: str) -> None:
    plan = plan_music(prompt)
    assert (plan.tempo_bpm, plan.key, plan.mode) == (tempo, key, key.split()[1])


def test_explicit_key_beats_the_mood() -> None:
    plan = plan_music("a sad song in C major")
    assert (plan.mood, plan.key, plan.mode) == ("sad", "C major", "major")


@pytest.mark.parametrize("subject", ["piano", "guitar by the sea", "song for a rainy night"])
def test_sad_is_minor_and_slower_than_happy(subject: str) -> None:
    sad = plan_music(f"a sad melancholic {subject}")
    happy = plan_music(f"a happy upbeat {subject}")
    assert (sad.mood, sad.mode) == ("sad", "minor")
    assert happy.mode == "major"
    assert sad.tempo_bpm < happy.tempo_bpm


def test_mood_words_pick_the_mood() -> None:
    assert plan_music("dark ominous drones").mood == "dark"
    assert plan_music("chill lo-fi beats to study to").mood == "chill"
    assert plan_music("energetic workout anthem").tempo_bpm >= 124
    assert plan_music("a tuba and a kazoo").mood == "neutral"


def test_the_plan_is_drawn_from_the_prompt_alone() -> None:
    assert plan_music("a tuba and a kazoo") == plan_music("a tuba and a kazoo")
    assert plan_music("a tuba and a kazoo").seed != plan_music("a kazoo and a tuba").seed


def test_a_stereo_16_bit_wav_and_an_mp3_of_exactly_the_duration() -> None:
    wav, mp3, plan = render_music("happy summer pop", 3)
    (channels, width, rate, frames), samples = wav_samples(wav)
    assert (channels, width, rate, frames) == (2, 2, RATE, 3 * RATE)
    form, codec, mp3_channels, mp3_rate, container_seconds, decoded_seconds = mp3_facts(mp3)
    assert (form, codec.startswith("mp3"), mp3_channels, mp3_rate) == ("mp3", True, 2, RATE)
    assert abs(container_seconds - 3) < 0.1
    assert abs(decoded_seconds - 3) < 0.1
    assert plan == plan_music("happy summer pop")
    # Real audio: loud enough, never clipped flat, and faded in from silence.
    rms = float(np.sqrt((samples**2).mean()))
    assert 0.05 < rms < 0.5
    assert np.abs(samples).max() < 1.0
    assert np.abs(samples[:10]).max() < 0.01


@pytest.mark.parametrize("prompt", ["happy upbeat 120 bpm", "sad slow piano", "a tuba"])
def test_the_loudness_pulses_with_the_beat(prompt: str) -> None:
    wav, _, plan = render_music(prompt, 5)
    _, samples = wav_samples(wav)
    mono = samples.mean(axis=1)
    beat = 60 / plan.tempo_bpm * RATE
    window = int(beat / 8)
    # The energy in the first eighth of each beat (the kick) against the middle eighth.
    on, off = [], []
    for n in range(1, int(len(mono) / beat) - 1):
        start = int(n * beat)
        on.append(np.sqrt((mono[start : start + window] ** 2).mean()))
        middle = start + int(beat / 2)
        off.append(np.sqrt((mono[middle : middle + window] ** 2).mean()))
    assert np.mean(on) > 1.5 * np.mean(off)


def test_the_same_request_gives_the_same_bytes() -> None:
    assert render_music("rain on a window", 2) == render_music("rain on a window", 2)


def test_different_prompts_and_tracks_sound_different() -> None:
    first, _, plan = render_music("rain on a window", 2)
    other_prompt, _, _ = render_music("a rooftop party", 2)
    second_track, _, second_plan = render_music("rain on a window", 2, index=1)
    assert len({first, other_prompt, second_track}) == 3
    assert second_plan == plan
    _, a = wav_samples(first)
    _, b = wav_samples(second_track)
    assert np.abs(a - b).mean() > 0.01


def test_progress_rises_to_one_and_can_stop_the_render() -> None:
    seen: list[float] = []
    render_music("a tuba", 3, on_progress=seen.append)
    assert seen == pytest.approx([1 / 3, 2 / 3, 1.0])

    def stop(fraction: float) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        render_music("a tuba", 3, on_progress=stop)


@pytest.mark.parametrize("seconds", [0, MAX_SECONDS + 1])
def test_impossible_durations_are_refused(seconds: int) -> None:
    with pytest.raises(ValueError):
        render_music("a tuba", seconds)
