"""A catalog for benchmarks: the packaged one plus a plan ``bench`` with no daily quotas and a
per-minute limit no benchmark reaches, so a run measures the server, not the plan it is on."""

from __future__ import annotations

import json
from pathlib import Path

from mediagate.catalog.loader import PACKAGED


def write_bench_catalog(folder: Path) -> Path:
    catalog = json.loads(PACKAGED.read_text())
    catalog["plans"]["bench"] = {
        "requests_per_minute": 1_000_000_000,
        "byok": True,
        "daily_quotas": {"image": None, "video": None, "chat": None},
    }
    path = folder / "bench-catalog.json"
    path.write_text(json.dumps(catalog))
    return path
