"""Throughput of the VLM planner's client against a local OpenAI-protocol server.

The server (tests/openai_stub_server.py) adds a fixed latency to every chat request, so with
``concurrency`` requests in flight the ideal wall time is ``requests / concurrency x
latency``; the ratio measured / ideal is the client's overhead (scheduling, HTTP, JSON,
and, for the planner mode, image preprocessing and reply parsing). Goal: <= 1.25x.

    python benchmarks/vlm_client.py                  # 64 requests, 250 ms, 16 in flight
    python benchmarks/vlm_client.py --mode client --requests 256 --concurrency 64

``--mode planner`` (default) times ``VLMPlanner.plan_batch`` with the single_call strategy
(one request per sample, 640x480 images on the default Qwen2.5-VL grid); ``--mode client``
times bare ``VLMClient.chat`` calls. The health check runs before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from iiie.planners.vlm import VLMPlanner  # noqa: E402
from iiie.types import Category, EditRequest, Plan  # noqa: E402
from iiie.vlm.aio import BackgroundLoop  # noqa: E402
from iiie.vlm.client import VLMClient  # noqa: E402
from iiie.vlm.schema import response_format  # noqa: E402
from iiie.vlm.settings import VLMSettings  # noqa: E402
from tests.openai_stub_server import StubServer, follow_schema, free_port  # noqa: E402

MODEL = "bench-vlm"
CPU: list[float] = []  # client process CPU seconds per timed batch


class NoFallback:
    """The benchmark must not need a fallback; if one is used, the run is invalid."""

    name = "none"

    def plan_batch(self, requests):
        return [Plan(Category.LOCAL, raw="fallback") for _ in requests]


def responder(req):
    return follow_schema(req.schema, {"category": "remove", "object": "cup"})


class RemoteServer:
    """The stub server in its own process (like a real vLLM server: no shared GIL)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._root = base_url.removesuffix("/v1")

    def _call(self, path: str, method: str = "GET") -> dict:
        req = urllib.request.Request(self._root + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def reset(self) -> None:
        self._call("/stub/reset", "POST")

    @property
    def peak_in_flight(self) -> int:
        return self._call("/stub/stats")["peak_in_flight"]

    @property
    def request_count(self) -> int:
        return self._call("/stub/stats")["requests"]


@contextlib.contextmanager
def server_process(latency: float) -> Iterator[RemoteServer]:
    port = free_port()
    cmd = [sys.executable, str(ROOT / "tests" / "openai_stub_server.py"), "--port", str(port),
           "--model", MODEL, "--latency", str(latency), "--set", "category=remove",
           "--set", "object=cup"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RemoteServer(f"http://127.0.0.1:{port}/v1")
    try:
        deadline = time.time() + 60
        while True:
            try:
                server._call("/stub/stats")
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("the stub server process did not start") from None
                time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def server_in_process(latency: float) -> Iterator[StubServer]:
    with StubServer(MODEL, responder=responder, latency=latency) as server:
        yield server


def settings(server, concurrency: int) -> dict:
    return {"base_url": server.base_url, "model": MODEL, "family": "qwen2_5_vl",
            "concurrency": concurrency, "timeout": 60, "retries": 0}


def run_planner(server, n: int, concurrency: int, size: tuple[int, int]) -> float:
    requests = [
        EditRequest(f"b{i}", Image.new("RGB", size, (i % 256, 80, 160)), "remove the cup")
        for i in range(n)
    ]
    with VLMPlanner(settings(server, concurrency), strategy="single_call",
                    fallback=NoFallback()) as planner:
        planner.check()
        start, cpu = time.perf_counter(), time.process_time()
        plans = planner.plan_batch(requests)
        wall = time.perf_counter() - start
        CPU.append(time.process_time() - cpu)
        if any(p.fallback_reason for p in plans):
            raise SystemExit(f"invalid run: fallbacks {planner.stats()}")
    return wall


def run_client(server, n: int, concurrency: int) -> float:
    client = VLMClient(VLMSettings.from_config(settings(server, concurrency)))
    loop = BackgroundLoop()
    fmt = response_format(["category", "object"], "bench")
    messages = [{"role": "user", "content": "remove the cup"}]

    async def go() -> float:
        await client.health_check()
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client.chat(messages, fmt, seed=i) for i in range(n)))
        wall = time.perf_counter() - start
        CPU.append(time.process_time() - cpu)
        await client.aclose()
        return wall

    try:
        return loop.run(go())
    finally:
        loop.close()


def count(server) -> int:
    return len(server.requests) if isinstance(server, StubServer) else server.request_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["planner", "client"], default="planner")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--image-size", default="640x480")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--in-process", action="store_true",
                        help="run the server in this process (shares the GIL with the client)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.image_size.lower().split("x"))
    ideal = args.requests / args.concurrency * args.latency
    walls = []
    make = server_in_process if args.in_process else server_process
    with make(args.latency) as server:
        for _ in range(args.repeat):
            server.reset()
            if args.mode == "planner":
                wall = run_planner(server, args.requests, args.concurrency, size)
            else:
                wall = run_client(server, args.requests, args.concurrency)
            walls.append(wall)
            print(f"  wall {wall:.3f} s  ({wall / ideal:.2f}x ideal)  cpu {CPU[-1]:.3f} s  "
                  f"peak in flight {server.peak_in_flight}  requests {count(server)}")
    best, median = min(walls), statistics.median(walls)
    print(f"{args.mode}: {args.requests} requests, {args.latency * 1000:.0f} ms latency, "
          f"{args.concurrency} in flight: ideal {ideal:.3f} s, best {best:.3f} s "
          f"({best / ideal:.2f}x), median {median:.3f} s ({median / ideal:.2f}x); client CPU "
          f"{statistics.median(CPU) / args.requests * 1000:.1f} ms per request; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
