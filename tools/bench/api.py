"""`gonka bench api`: the API node's inference path on this machine, against its ML node alone.

A two-host network from genesis (`testermint_py.api_network`: two chain validators, each host's
API node with its own mock ML node, which answers without delay), taken to epoch 1. Each node
is its own process, as hosts run them, so that the nodes share the machine's cores; with
`--in-process` they all run in the benchmark's one event loop instead (one core for all,
and a chain block's execution stalls every request meanwhile). Then, from this process:

1. Low load: N sequential non-streaming chat completions sent straight to host A's mock ML node
   (the baseline), then N through host A's public API, signed by a developer with
   `api.client`'s signing (transfer agent -> executor -> ML node). Median and p99 of each, and
   what the two API hops add.
2. Throughput: C concurrent clients for D seconds (half through A, half through B as transfer
   agents). Completed 200s per second, and then the rate with every inference recorded on chain:
   completed inferences / (time from the first send until the last one's `inference_finished`
   event, i.e. its start and finish records both committed).

The issue's goal: at least 100 requests/s sustained with every inference recorded, and under
5 ms median added latency at low load.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import httpx
import trio

from api.client import gonka_async_http_client
from chain.rpc.client import RpcClient
from testermint_py.api_network import DEV, HANG_GUARD_S, MODEL, ApiNetwork, api_network

BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say something"}],
        "max_tokens": 16}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


def _ms(values: list[float]) -> tuple[float, float]:
    return (statistics.median(values) * 1000 if values else float("nan"),
            _pct(values, 0.99) * 1000)


async def _timed_posts(http: httpx.AsyncClient, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = await http.post(url, json=BODY)
        elapsed = time.perf_counter() - t
        if r.status_code != 200:
            raise RuntimeError(f"POST {url}: HTTP {r.status_code}: {r.text[:300]}")
        out.append(elapsed)
    return out


async def _low_load(net: ApiNetwork, requests: int) -> None:
    a = net.servers[0]
    async with httpx.AsyncClient(timeout=60) as plain, \
            gonka_async_http_client(DEV, a.public_url, timeout=60) as signed:
        # One warm-up request each (connections, first-use paths), not counted.
        await _timed_posts(plain, f"{net.mlnode_urls[0]}/v1/chat/completions", 1)
        await _timed_posts(signed, f"{a.public_url}/v1/chat/completions", 1)
        direct = await _timed_posts(plain, f"{net.mlnode_urls[0]}/v1/chat/completions",
                                    requests)
        through = await _timed_posts(signed, f"{a.public_url}/v1/chat/completions", requests)
    d_med, d_p99 = _ms(direct)
    t_med, t_p99 = _ms(through)
    print(f"low load, {requests} sequential non-streaming requests:")
    print(f"  mock ML node directly      median {d_med:8.2f} ms   p99 {d_p99:8.2f} ms")
    print(f"  through host A's API       median {t_med:8.2f} ms   p99 {t_p99:8.2f} ms   "
          f"ratio {t_med / d_med:.1f}x")
    print(f"  added by the two API hops  median {t_med - d_med:8.2f} ms   "
          f"p99 {t_p99 - d_p99:8.2f} ms   (goal: median < 5 ms)")


async def _throughput(net: ApiNetwork, concurrency: int, seconds: float) -> None:
    ids: set[str] = set()
    failures: dict[str, int] = {}
    recorded_at: dict[str, float] = {}
    sending_done = trio.Event()
    all_recorded = trio.Event()

    async with RpcClient(net.rpc_urls[0]) as rpc:
        start_height = (await rpc.status()).latest_height + 1

        async def watcher() -> None:
            async with rpc.events(from_height=start_height,
                                  types=("inference_finished",)) as frames:
                async for frame in frames:
                    now = time.perf_counter()
                    for event in frame.events:
                        attrs = {a.key: a.value for a in event.attributes}
                        recorded_at.setdefault(str(attrs.get("inference_id")), now)
                    if sending_done.is_set() and ids <= recorded_at.keys():
                        all_recorded.set()
                        return

        clients = [gonka_async_http_client(DEV, s.public_url, timeout=60,
                                           limits=httpx.Limits(max_connections=concurrency))
                   for s in net.servers]
        first = time.perf_counter()
        deadline = first + seconds

        async def client(k: int) -> None:
            http = clients[k % len(clients)]
            url = f"{net.servers[k % len(clients)].public_url}/v1/chat/completions"
            while time.perf_counter() < deadline:
                r = await http.post(url, json=BODY)
                if r.status_code == 200:
                    ids.add(r.json()["id"])
                else:
                    key = f"HTTP {r.status_code}"
                    failures[key] = failures.get(key, 0) + 1

        with trio.fail_after(HANG_GUARD_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watcher)
                async with trio.open_nursery() as senders:
                    for k in range(concurrency):
                        senders.start_soon(client, k)
                sent_end = time.perf_counter()
                sending_done.set()
                if ids <= recorded_at.keys():
                    all_recorded.set()
                    nursery.cancel_scope.cancel()
                await all_recorded.wait()
                nursery.cancel_scope.cancel()
        for http in clients:
            await http.aclose()
    done = len(ids)
    served_rps = done / (sent_end - first)
    last = max((recorded_at[i] for i in ids), default=sent_end)
    recorded_rps = done / (last - first)
    print(f"throughput, {concurrency} concurrent clients for {seconds:g} s through hosts A and "
          f"B:")
    print(f"  completed 200s             {done:6d} in {sent_end - first:6.2f} s = "
          f"{served_rps:8.1f} requests/s"
          + (f"   (failures: {failures})" if failures else ""))
    print(f"  with every inference recorded on chain: last record after {last - first:6.2f} s "
          f"= {recorded_rps:8.1f} requests/s   ratio {recorded_rps / 100:.2f}x of the "
          f"100/s goal")


async def _main(root: Path, requests: int, concurrency: int, seconds: float, price: int,
                processes: bool) -> None:
    t = time.perf_counter()
    async with api_network(root, price=price, processes=processes) as net:
        print(f"network in epoch 1 with both ML nodes serving after "
              f"{time.perf_counter() - t:.1f} s ({'priced' if price else 'free'} inference, "
              f"{'one process per node' if processes else 'every node in this process'})")
        await _low_load(net, requests)
        await _throughput(net, concurrency, seconds)


def run(*, requests: int = 200, concurrency: int = 8, seconds: float = 10.0,
        free: bool = False, processes: bool = True) -> None:
    with tempfile.TemporaryDirectory(prefix="gonka-bench-api-") as tmp:
        trio.run(_main, Path(tmp), requests, concurrency, seconds, 0 if free else 10,
                 processes)
