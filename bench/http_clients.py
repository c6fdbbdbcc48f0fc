"""Which HTTP client carries Copernica's per-profile PUTs: client CPU per request, and rate.

Each client PUTs the same profiles into the sandbox's Copernica API (a child process, so its
CPU is not counted here) at the same concurrency; the clients take turns, round after round,
so a drift of the shared machine's speed hits them alike. Per client: the process CPU seconds
(``time.process_time``: every thread of this process) per request, and requests per second.

    python -m bench.http_clients [--requests N] [--rounds R] [--concurrency C] [--latency-ms L]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from bench.cases import sandbox_process

TOKEN = "bench-token"


def _requests(base: str, n: int, round_: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        ident = f"C{round_:03d}{i:08d}"
        query = urlencode(
            [("fields[]", f"customerid=={ident}"), ("create", "1"), ("access_token", TOKEN)]
        )
        body = {"fields": {"customerid": ident, "email": f"p{i}@example.com", "city": "São Paulo"}}
        out.append((f"{base}/v3/database/shop/profiles?{query}", json.dumps(body).encode()))
    return out


HEADERS = {"Content-Type": "application/json"}


def httpx_threads(reqs: list[tuple[str, bytes]], concurrency: int) -> int:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(limits=limits, timeout=60) as client:

        def put(req: tuple[str, bytes]) -> int:
            return client.put(req[0], content=req[1], headers=HEADERS).status_code

        with ThreadPoolExecutor(concurrency) as pool:
            return sum(1 for s in pool.map(put, reqs) if s < 300)


def urllib3_threads(reqs: list[tuple[str, bytes]], concurrency: int) -> int:
    import urllib3

    pool_manager = urllib3.PoolManager(maxsize=concurrency, block=True, timeout=60)

    def put(req: tuple[str, bytes]) -> int:
        return pool_manager.request("PUT", req[0], body=req[1], headers=HEADERS).status

    with ThreadPoolExecutor(concurrency) as pool:
        ok = sum(1 for s in pool.map(put, reqs) if s < 300)
    pool_manager.clear()
    return ok


async def _gather_bounded(reqs: list[tuple[str, bytes]], concurrency: int, put: Any) -> int:
    it = iter(reqs)
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for req in it:
            if await put(req) < 300:
                ok += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


def httpx_async(reqs: list[tuple[str, bytes]], concurrency: int) -> int:
    import httpx

    async def main() -> int:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:

            async def put(req: tuple[str, bytes]) -> int:
                return (await client.put(req[0], content=req[1], headers=HEADERS)).status_code

            return await _gather_bounded(reqs, concurrency, put)

    return asyncio.run(main())


def aiohttp_async(reqs: list[tuple[str, bytes]], concurrency: int) -> int:
    import aiohttp
    from yarl import URL

    async def main() -> int:
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def put(req: tuple[str, bytes]) -> int:
                async with session.put(
                    URL(req[0], encoded=True), data=req[1], headers=HEADERS
                ) as resp:
                    await resp.read()
                    return resp.status

            return await _gather_bounded(reqs, concurrency, put)

    return asyncio.run(main())


CLIENTS: dict[str, Callable[[list[tuple[str, bytes]], int], int]] = {
    "httpx threads": httpx_threads,
    "urllib3 threads": urllib3_threads,
    "httpx.AsyncClient": httpx_async,
    "aiohttp": aiohttp_async,
}


def measure(requests: int, rounds: int, concurrency: int, latency_ms: int) -> dict[str, Any]:
    """Per client: median CPU microseconds per request and requests per second over rounds."""
    cpu: dict[str, list[float]] = {name: [] for name in CLIENTS}
    rate: dict[str, list[float]] = {name: [] for name in CLIENTS}
    with sandbox_process(copernica_databases={"shop": None}, latency_ms=latency_ms) as url:
        for round_ in range(rounds):
            order = list(CLIENTS) if round_ % 2 == 0 else list(reversed(CLIENTS))
            for name in order:
                reqs = _requests(url, requests, round_ * 10 + list(CLIENTS).index(name))
                cpu0, wall0 = time.process_time(), time.perf_counter()
                ok = CLIENTS[name](reqs, concurrency)
                cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
                if ok != requests:
                    raise RuntimeError(f"{name}: {ok} of {requests} PUTs accepted")
                cpu[name].append(cpu_s / requests * 1e6)
                rate[name].append(requests / wall_s)
    base = statistics.median(cpu["httpx threads"])
    return {
        name: {
            "cpu_us_per_request": round(statistics.median(cpu[name])),
            "cpu_vs_httpx_threads": round(statistics.median(cpu[name]) / base, 2),
            "requests_per_s": round(statistics.median(rate[name])),
        }
        for name in CLIENTS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    figures = measure(args.requests, args.rounds, args.concurrency, args.latency_ms)
    print(json.dumps({"args": vars(args), "clients": figures}, indent=2))


if __name__ == "__main__":
    main()
