"""The reference library shipped with the package: our own images, tagged. In
library-assisted mode the engine picks the reference whose tags best match the prompt and
hints, deterministically."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FOLDER = Path(__file__).with_name("library")


@dataclass(frozen=True)
class Reference:
    id: str
    path: Path
    tags: tuple[str, ...]


@lru_cache(maxsize=1)
def references() -> tuple[Reference, ...]:
    index = json.loads((FOLDER / "library.json").read_text())
    return tuple(
        Reference(r["id"], FOLDER / r["file"], tuple(r["tags"])) for r in index["references"]
    )


def pick(prompt: str, hints: dict[str, object]) -> Reference:
    """The best tag match for the words of the prompt and hint values; ties broken by a hash
    of the text so the same request always picks the same reference."""
    text = " ".join([prompt, *(str(v) for v in hints.values())]).lower()
    words = set(re.findall(r"[a-z]+", text))
    seed = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    refs = references()
    return max(
        refs, key=lambda r: (len(words & set(r.tags)), -((seed + refs.index(r)) % len(refs)))
    )
