"""Upload memory: ten 30 MB images to ``POST /v2/image/agent`` must not raise the server's
resident memory by more than 64 MB.

Method: start ``mediagate serve`` on a free port (fresh data dir, SQLite), make a workspace and
a sandbox key with the CLI, warm the endpoint up with one small upload, then read the server's
RSS from ``/proc/<pid>/status`` every 10 ms while a client sends one multipart request with ten
images of 30 MB each (high-entropy JPEGs, about 23.5 megapixels, so each is a real photo-sized
decode, not padding). The client streams the files from disk (httpx multipart), so its own
memory does not matter. Reported: RSS before, peak during the request, the increase, the time
the request took, and its status. The run is repeated with the in-process workers on (the job
then decodes the stored inputs too) and off (the request alone).

Run from the repository root::

    .venv/bin/python bench/upload.py            # both configurations
    .venv/bin/python bench/upload.py --json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MEDIAGATE = str(ROOT / ".venv" / "bin" / "mediagate")
MiB = 1024 * 1024
TARGET_MB = 64


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def make_images(folder: Path, count: int, target_bytes: int) -> list[Path]:
    """JPEG noise just under ``target_bytes`` each (30 MB: about 23.5 megapixels at q=95)."""
    rng = np.random.default_rng(7)
    paths = []
    width, height = 5600, 4200
    for i in range(count):
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=95)
        data = buf.getvalue()
        if len(data) > target_bytes:
            raise SystemExit(f"image {i} is {len(data)} bytes, over {target_bytes}")
        # Pad after the JPEG end marker up to the size under test (decoders ignore it).
        path = folder / f"img{i}.jpg"
        path.write_bytes(data + b"\0" * (target_bytes - len(data)))
        paths.append(path)
    return paths


def run(workers: bool, images: list[Path], data_dir: Path) -> dict[str, Any]:
    port = _free_port()
    env = {
        **os.environ,
        "MEDIAGATE_DATA_DIR": str(data_dir),
        "MEDIAGATE_PORT": str(port),
        "MEDIAGATE_SECRET_KEY": "bench-" + "x" * 32,
    }
    subprocess.run([MEDIAGATE, "db", "upgrade"], env=env, check=True, capture_output=True)
    name = f"bench{port}"
    subprocess.run(
        [MEDIAGATE, "workspaces", "create", name, "--plan", "enterprise", "--credits", "100000"],
        env=env,
        check=True,
        capture_output=True,
    )
    key = subprocess.run(
        [MEDIAGATE, "keys", "create", "--workspace", name, "--mode", "sandbox"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    args = [MEDIAGATE, "serve", "--port", str(port)] + ([] if workers else ["--no-workers"])
    server = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {key}"}
        small = io.BytesIO()
        Image.new("RGB", (64, 64)).save(small, "PNG")
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            warm = client.post(
                "/v2/image/agent",
                data={"instructions": "warm up"},
                files=[("images", ("w.png", small.getvalue(), "image/png"))],
            )
            warm.raise_for_status()
            time.sleep(1.5)  # let the warm-up job finish
            before = _rss_kib(server.pid)
            peak = before
            stop = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not stop.is_set():
                    peak = max(peak, _rss_kib(server.pid))
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample)
            sampler.start()
            handles = [p.open("rb") for p in images]
            started = time.monotonic()
            try:
                r = client.post(
                    "/v2/image/agent",
                    data={"instructions": "make a grid"},
                    files=[
                        ("images", (p.name, h, "image/jpeg"))
                        for p, h in zip(images, handles, strict=True)
                    ],
                )
                took = time.monotonic() - started
                job_peak = peak
                if workers and r.status_code == 202:
                    job_id = r.json()["data"]["job_id"]
                    while client.get(f"/v1/jobs/{job_id}").json()["data"]["status"] in (
                        "queued",
                        "processing",
                    ):
                        time.sleep(0.1)
            finally:
                for h in handles:
                    h.close()
                stop.set()
                sampler.join()
        return {
            "workers": workers,
            "status": r.status_code,
            "seconds": round(took, 2),
            "rss_before_mb": round(before / 1024, 1),
            "request_peak_mb": round(job_peak / 1024, 1),
            "request_increase_mb": round((job_peak - before) / 1024, 1),
            "peak_with_job_mb": round(peak / 1024, 1),
            "increase_with_job_mb": round((peak - before) / 1024, 1),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--size-mb", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mg-upload-") as tmp:
        folder = Path(tmp)
        images = make_images(folder, opts.count, opts.size_mb * MiB)
        results = []
        for workers in (False, True):
            data_dir = folder / f"data-{workers}"
            data_dir.mkdir()
            results.append(run(workers, images, data_dir))
    if opts.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"{opts.count} images x {opts.size_mb} MB in one multipart request "
        f"(target: RSS increase <= {TARGET_MB} MB)"
    )
    print(
        f"{'workers':>8} {'status':>6} {'seconds':>8} {'rss before':>10} "
        f"{'peak (request)':>15} {'increase':>9} {'peak (+job)':>12} {'increase':>9}"
    )
    for r in results:
        print(
            f"{'on' if r['workers'] else 'off':>8} {r['status']:>6} {r['seconds']:>8} "
            f"{r['rss_before_mb']:>10} {r['request_peak_mb']:>15} "
            f"{r['request_increase_mb']:>9} {r['peak_with_job_mb']:>12} "
            f"{r['increase_with_job_mb']:>9}"
        )
    worst = max(r["request_increase_mb"] for r in results)
    print(f"request RSS increase: {worst} MB -> {'PASS' if worst <= TARGET_MB else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
