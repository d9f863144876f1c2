"""Shared pieces of the benchmarks: running the ``mediagate`` CLI, free ports, CPU accounting,
formatting, and a catalog with a ``bench`` plan that has no quotas and no effective per-minute
limit, so a run measures the server and not the plan it is on."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from mediagate.catalog.loader import PACKAGED

ROOT = Path(__file__).resolve().parent.parent


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


def cli(env: dict[str, str], *argv: str) -> str:
    proc = subprocess.run(
        [mediagate_bin(), *argv], env=env, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError(f"mediagate {' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def code_under_test(env: dict[str, str]) -> str:
    """The mediagate package the server imports (PYTHONPATH may point at a snapshot)."""
    python = Path(mediagate_bin()).parent / "python"
    probe = "import mediagate, os; print(os.path.dirname(mediagate.__file__))"
    path = subprocess.run(
        [str(python), "-c", probe], env=env, capture_output=True, text=True, timeout=60
    ).stdout.strip()
    if not path.startswith(str(ROOT)):
        return path
    git = ["git", "-C", str(ROOT)]
    rev = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True)
    state = "+uncommitted changes in src/" if dirty.stdout.strip() else ""
    return f"{path} (git {rev.stdout.strip()}{state})"


def fmt(x: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def json_safe(value: Any) -> Any:
    """NaN (no samples) as null, so that the output is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (everything but idle and iowait)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def mediagate_bin() -> str:
    here = Path(sys.executable).parent / "mediagate"
    return str(here if here.exists() else ROOT / ".venv" / "bin" / "mediagate")


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc; 0 where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
