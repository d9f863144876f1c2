"""Sandbox music: a short seeded piece synthesised with numpy, as a stereo WAV and an MP3.

Nothing here calls a model. The prompt picks a tempo, a key and a mood (explicit "120 bpm" or
"in D minor" win over mood words); the piece is a four-chord loop in that key as soft pads, a
bass note per half bar, a seeded melody from the scale and a kick/snare/hat pattern at the tempo.
The same prompt and track index always give the same bytes.

Example::

    wav, mp3, plan = render_music("a sad piano song in D minor", 30)
    plan.key, plan.tempo_bpm  # ("D minor", 72)
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import wave
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np

MAX_SECONDS = 240
SAMPLE_RATE = 44100
MP3_BIT_RATE = 192_000
_TEMPO_LIMITS = (40, 220)
_FADE_IN = 0.25
_FADE_OUT = 2.0

_PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_NAMES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# Scale degrees (0-based) of the loop: I-V-vi-IV in major, i-VI-III-VII in minor.
_PROGRESSIONS = {"major": (0, 4, 5, 3), "minor": (0, 5, 2, 6)}

_BPM = re.compile(r"\b(\d{2,3})\s*-?\s*bpm\b", re.IGNORECASE)
_KEY = re.compile(
    r"(?:\b(?P<lead>in|key of)\s+)?\b(?P<note>[A-Ga-g])(?P<acc>#|♯|♭|b|-?\s?sharp|-?\s?flat)?"
    r"\s*(?P<mode>major|minor|maj|min)\b",
    re.IGNORECASE,
)
_MODE_ONLY = re.compile(r"\b(major|minor)\s+key\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Mood:
    name: str
    words: str  # space-separated
    mode: str | None  # None: the seed picks
    tempo: tuple[int, int]
    drums: float  # drum level


# The first mood with the most words in the prompt wins.
_MOODS = (
    _Mood("energetic", "energetic upbeat dance party workout hype fast driving edm rave",
          "major", (124, 140), 1.0),
    _Mood("happy", "happy joyful cheerful bright sunny fun playful summer celebration",
          "major", (108, 124), 0.9),
    _Mood("epic", "epic heroic cinematic triumphant battle", "minor", (88, 104), 1.0),
    _Mood("dark", "dark ominous tense suspense horror scary angry aggressive sinister",
          "minor", (78, 96), 0.9),
    _Mood("sad", "sad melancholic melancholy sorrow lonely heartbreak tears grief somber",
          "minor", (64, 80), 0.55),
    _Mood("romantic", "romantic love tender warm", "major", (72, 90), 0.6),
    _Mood("calm", "calm peaceful relaxing relax gentle sleep meditation serene soft slow",
          "major", (64, 82), 0.45),
    _Mood("chill", "chill ambient lofi dreamy mellow lounge", "minor", (74, 90), 0.6),
)  # fmt: skip
_NEUTRAL = _Mood("neutral", "", None, (92, 116), 0.8)


@dataclass(frozen=True)
class MusicPlan:
    tempo_bpm: int
    key: str  # e.g. "A minor"
    mode: str  # "major" or "minor"
    mood: str
    seed: int
    tonic: int  # pitch class, 0 = C


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x00".join(["mediagate-music", *map(str, parts)]).encode()).digest()


def plan_music(prompt: str) -> MusicPlan:
    """Draw tempo, key and mood from the prompt; explicit bpm and key win over mood words."""
    digest = _digest(prompt)
    seed = int.from_bytes(digest[:8], "big")
    u = [int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in range(8, 20, 4)]
    text = prompt.lower().replace("lo-fi", "lofi")
    words = re.findall(r"[a-z]+", text)
    scores = [sum(word in mood.words.split() for word in words) for mood in _MOODS]
    mood = _MOODS[scores.index(max(scores))] if max(scores) > 0 else _NEUTRAL

    low, high = mood.tempo
    tempo = low + int(u[0] * (high - low + 1))
    if found := _BPM.search(prompt):
        tempo = min(max(int(found.group(1)), _TEMPO_LIMITS[0]), _TEMPO_LIMITS[1])

    tonic = int(u[1] * 12)
    mode = mood.mode or ("minor" if u[2] < 0.5 else "major")
    if found_mode := _MODE_ONLY.search(prompt):
        mode = found_mode.group(1).lower()
    for key in _KEY.finditer(prompt):
        # "a minor change" is English, not a key: a lowercase note needs "in" or "key of".
        if key.group("note").islower() and not key.group("lead"):
            continue
        tonic = _PITCH_CLASSES[key.group("note").upper()]
        accidental = (key.group("acc") or "").lower()
        tonic = (tonic + ("sharp" in accidental or "#" in accidental or "♯" in accidental)) % 12
        tonic = (tonic - (accidental in ("b", "♭") or "flat" in accidental)) % 12
        mode = "major" if key.group("mode").lower().startswith("maj") else "minor"
        break
    return MusicPlan(tempo, f"{_KEY_NAMES[tonic]} {mode}", mode, mood.name, seed, tonic)


def _uniforms(seed: int, n: int) -> np.ndarray:
    # The bit generator's raw stream, not Generator methods, whose output may change between
    # numpy releases: the same prompt must keep giving the same file.
    raw = np.random.PCG64(seed).random_raw(n)
    return (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _hz(midi: np.ndarray) -> np.ndarray:
    return np.asarray(440.0 * 2.0 ** ((midi - 69.0) / 12.0))


class _Score:
    """The whole piece as note tables, rendered on demand for any span of samples."""

    def __init__(self, plan: MusicPlan, seconds: int, sample_rate: int, index: int) -> None:
        self.rate = sample_rate
        self.total = seconds * sample_rate
        self.beat = 60.0 / plan.tempo_bpm
        self.drums = next((m.drums for m in _MOODS if m.name == plan.mood), _NEUTRAL.drums)
        self.fade_out = min(_FADE_OUT, seconds / 4)
        scale = np.array(_SCALES[plan.mode])
        track_seed = int.from_bytes(_digest(plan.seed, index)[:8], "big")
        rand = _uniforms(track_seed, 512)

        def pitch(degree: np.ndarray | int) -> np.ndarray:
            d = np.asarray(degree)
            return np.asarray(plan.tonic + scale[d % 7] + 12 * (d // 7), dtype=np.float64)

        roots = np.array(_PROGRESSIONS[plan.mode])
        triads = roots[:, None] + np.array([0, 2, 4])
        self.pad = _hz(48 + pitch(triads)).astype(np.float32)  # (4 chords, 3 voices)
        self.bass = _hz(36 + pitch(roots)).astype(np.float32)
        # Two four-bar phrases of eighth notes, played A A B A: a seeded walk on the scale that
        # lands on a chord tone at each bar and rests now and then.
        phrases = []
        for p in range(2):
            r = rand[p * 64 : p * 64 + 64]
            degree, notes = int(r[0] * 5), []
            for step in range(32):
                degree = min(max(degree + int(r[step] * 5) - 2, -2), 11)
                if step % 8 == 0:
                    tones = triads[step // 8] % 7 + 7 * (degree // 7)
                    degree = int(tones[np.abs(tones - degree).argmin()])
                notes.append(np.nan if r[32 + step] < 0.15 and step % 8 else degree)
            phrases.append(np.array(notes))
        walk = np.concatenate([phrases[0], phrases[0], phrases[1], phrases[0]])
        rests = np.isnan(walk)
        melody = np.where(rests, 0.0, _hz(72 + pitch(np.nan_to_num(walk).astype(int))))
        self.melody = melody.astype(np.float32)
        self.melody_on = (~rests).astype(np.float32)
        noise = (_uniforms(track_seed ^ 0x5EED, 1 << 15) * 2 - 1).astype(np.float32)
        self.noise = noise
        self.hiss = noise - np.roll(noise, 1)  # a first difference: crude high-pass for hats

    def block(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` as a (2, n) float array in about -1..1."""
        n = np.arange(start, stop)
        t = n / self.rate
        beats = t / self.beat
        beat = np.floor(beats).astype(np.int64)
        # Times within a beat, bar or note are small, so float32 keeps every phase exact enough
        # and halves the cost of the sines.
        in_beat = ((beats - beat) * self.beat).astype(np.float32)
        bar = beat // 4
        in_bar = ((beats - 4 * bar) * self.beat).astype(np.float32)
        bar_len = 4 * self.beat

        chord = bar % 4
        swell = np.minimum(1, in_bar / 0.25) * np.clip((bar_len - in_bar) / 0.3, 0, 1)
        left = np.zeros_like(in_bar)
        right = np.zeros_like(in_bar)
        for voice in range(3):
            cycles = self.pad[chord, voice] * in_bar
            for out, detune in ((left, 0.998), (right, 1.002)):
                tone = np.sin((2 * np.pi * detune) * cycles)
                out += (0.07 * swell) * tone * (1 + 0.15 * tone * tone)

        half = beat // 2
        in_half = ((beats - 2 * half) * self.beat).astype(np.float32)
        pluck = np.minimum(1, in_half / 0.01) * np.exp(-2.5 * in_half)
        pluck *= np.clip((2 * self.beat - in_half) / 0.05, 0, 1)
        low = np.sin(2 * np.pi * self.bass[chord] * in_half)
        bass = 0.22 * pluck * low * (1 + 0.3 * low * low)

        eighth = np.floor(beats * 2).astype(np.int64)
        step_len = self.beat / 2
        in_step = ((beats * 2 - eighth) * step_len).astype(np.float32)
        note = eighth % len(self.melody)
        ring = np.minimum(1, in_step / 0.01) * np.exp(-4 * in_step)
        ring *= np.clip((step_len - in_step) / 0.03, 0, 1) * self.melody_on[note]
        phase = 2 * np.pi * self.melody[note] * in_step
        lead = 0.13 * ring * (np.sin(phase) + 0.25 * np.sin(2 * phase))

        kick_phase = 2 * np.pi * (45 * in_beat + 110 / 28 * (1 - np.exp(-28 * in_beat)))
        kick = 0.45 * np.sin(kick_phase) * np.exp(-9 * in_beat)
        grain = n % len(self.noise)
        backbeat = (beat % 2 == 1) * np.exp(-16 * in_beat)
        snare = backbeat * (0.14 * self.noise[grain] + 0.08 * np.sin(2 * np.pi * 185 * in_beat))
        hat = (eighth % 2 == 1) * (0.07 * self.hiss[grain]) * np.exp(-55 * in_step)
        drums = self.drums * (kick + snare)

        fade = np.minimum(1, t / _FADE_IN) * np.minimum(
            1, (self.total - n) / self.rate / self.fade_out
        )
        fade = fade.astype(np.float32)
        mix = np.stack(
            [
                left + bass + 0.55 * lead + drums + 0.4 * self.drums * hat,
                right + bass + 0.45 * lead + drums + 0.6 * self.drums * hat,
            ]
        )
        # A soft clip rather than a normaliser: blocks are rendered one at a time.
        return np.tanh(1.2 * mix * fade) / math.tanh(1.2)


def render_music(
    prompt: str,
    seconds: int,
    *,
    sample_rate: int = SAMPLE_RATE,
    index: int = 0,
    on_progress: Callable[[float], None] | None = None,
) -> tuple[bytes, bytes, MusicPlan]:
    """Render a sandbox track; return ``(wav bytes, mp3 bytes, plan)``.

    The WAV is stereo 16-bit PCM with exactly ``seconds * sample_rate`` frames; the MP3 is the
    same audio at 192 kbps. ``index`` picks a different melody and drum noise for the n-th track
    of one request. ``on_progress(fraction)`` is called after each block has been encoded; an
    exception it raises stops the render.
    """
    if not 1 <= seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be between 1 and {MAX_SECONDS}")
    if not 8000 <= sample_rate <= 96000:
        raise ValueError("sample_rate must be between 8000 and 96000")
    if index < 0:
        raise ValueError("index must not be negative")
    plan = plan_music(prompt)
    score = _Score(plan, seconds, sample_rate, index)
    # About sixteen blocks, so progress moves steadily without flooding the caller.
    block = max(1, math.ceil(seconds / 16)) * sample_rate
    wav_buffer, mp3_buffer = io.BytesIO(), io.BytesIO()
    with (
        wave.open(wav_buffer, "wb") as wav,
        av.open(mp3_buffer, mode="w", format="mp3") as mp3,
    ):
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        stream = mp3.add_stream("libmp3lame", rate=sample_rate, layout="stereo")
        stream.bit_rate = MP3_BIT_RATE
        # LAME's -q 7: about twice as fast as its default, and plenty for a sandbox track.
        stream.codec_context.options = {"compression_level": "7"}
        for start in range(0, score.total, block):
            stop = min(start + block, score.total)
            pcm = np.round(score.block(start, stop) * 32767).astype(np.int16)
            wav.writeframes(pcm.T.astype("<i2").tobytes())
            frame = av.AudioFrame.from_ndarray(pcm, format="s16p", layout="stereo")
            frame.sample_rate = sample_rate
            frame.pts = start
            mp3.mux(stream.encode(frame))
            if on_progress is not None:
                on_progress(stop / score.total)
        mp3.mux(stream.encode(None))
    return wav_buffer.getvalue(), mp3_buffer.getvalue(), plan
