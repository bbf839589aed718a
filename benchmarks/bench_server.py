"""Load test of ``spectrum serve`` on loopback: N concurrent clients, a bounded number of requests.

Starts ``spectrum serve`` (the embedded default model unless --model) in a subprocess on a free port of
127.0.0.1, warms it up, then has --clients concurrent clients send --requests POST /api/parse requests in all
(the bundled group photo at --size pixels, default prompts). Reports p50/p95/max latency, throughput, status
counts (5xx must be 0) and the server's resident memory after warm-up, half-way and at the end.

    python benchmarks/bench_server.py --clients 50 --requests 300 --size 512
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def _load(url: str, image: bytes, clients: int, total: int, timeout: float,
                on_half: Any = None) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    counter = {"next": 0}

    async def client(http: httpx.AsyncClient) -> None:
        while counter["next"] < total:
            counter["next"] += 1
            if on_half is not None and counter["next"] == total // 2:
                on_half()
            start = time.perf_counter()
            try:
                response = await http.post(f"{url}/api/parse", files={"image": ("photo.jpg", image, "image/jpeg")})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - start)
            except httpx.HTTPError as err:  # connection refused/reset, client-side timeout
                errors.append(type(err).__name__)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    pick = (lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else (lambda q: float("nan"))
    return {"requests": total, "clients": clients, "wall_s": wall, "ok": len(latencies), "statuses": statuses,
            "client_errors": len(errors), "server_5xx": sum(n for s, n in statuses.items() if s >= 500),
            "p50_s": statistics.median(ordered) if ordered else float("nan"), "p95_s": pick(0.95),
            "max_s": ordered[-1] if ordered else float("nan"), "throughput_rps": len(latencies) / wall}


def run_load(url: str, image: bytes, clients: int, total: int, timeout: float = 300.0,
             on_half: Any = None) -> dict[str, Any]:
    """Send ``total`` parse requests from ``clients`` concurrent clients; latency percentiles and status counts."""
    return asyncio.run(_load(url, image, clients, total, timeout, on_half))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--size", type=int, default=512, help="longest side of the uploaded photo")
    parser.add_argument("--model", help="model directory (default: the embedded model)")
    parser.add_argument("--max-concurrency", type=int, default=1)
    args = parser.parse_args()

    import httpx
    from PIL import Image

    from common import ROOT, record

    photo = Image.open(ROOT / "examples" / "group.jpg").convert("RGB")
    photo.thumbnail((args.size, args.size))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    image = buffer.getvalue()

    port = _free_port()
    command = [sys.executable, "-m", "spectrum_parsing.cli", "serve", "--port", str(port),
               "--max-concurrency", str(args.max_concurrency), "--max-queue", str(max(64, args.clients))]
    if args.model:
        command += ["--model", args.model]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise SystemExit("the server did not start: " + server.stderr.read().decode()[-2000:])
        warm = run_load(url, image, 4, 20)
        assert warm["server_5xx"] == 0, warm
        memory = {"after warm-up": rss_mb(server.pid)}
        half: dict[str, float] = {}
        result = run_load(url, image, args.clients, args.requests,
                          on_half=lambda: half.setdefault("half-way", rss_mb(server.pid)))
        memory.update(half)
        memory["end"] = rss_mb(server.pid)
        again = run_load(url, image, args.clients, args.requests)  # a second round: memory must not keep growing
        memory["end of a second round"] = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    results = {
        "requests": result["requests"], "concurrent clients": result["clients"],
        "HTTP statuses": {str(k): v for k, v in sorted(result["statuses"].items())},
        "server 5xx": result["server_5xx"] + again["server_5xx"], "client errors": result["client_errors"],
        "p50 latency (s)": round(result["p50_s"], 3), "p95 latency (s)": round(result["p95_s"], 3),
        "max latency (s)": round(result["max_s"], 3), "throughput (req/s)": round(result["throughput_rps"], 2),
        "wall (s)": round(result["wall_s"], 1),
        "server RSS (MiB)": {k: round(v, 1) for k, v in memory.items()},
        "second round p50 / p95 (s)": [round(again["p50_s"], 3), round(again["p95_s"], 3)],
    }
    cmd = "python benchmarks/bench_server.py " + " ".join(sys.argv[1:])
    record("Server load test (spectrum serve, loopback)", cmd.strip(),
           {"clients": args.clients, "requests": args.requests, "size": args.size,
            "max_concurrency": args.max_concurrency, "model": args.model or "spectrum-bodypix (embedded)"}, results)
    for k, v in results.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
