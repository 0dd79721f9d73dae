"""Acceptance scenario: the dynamic price (gonka-testermint.md section 5, item 36, adapted: our
price steps at most 2% a block on the utilization of the model's sub-group, kept in millionths
of a ngonka, with a floor). Three participants, the grace period over from the first epoch, the
devnet model at base 10 ngonka per token with a floor of 9."""

from __future__ import annotations

import pytest
import trio

from testermint_py.network import MODEL, Network

pytestmark = pytest.mark.slow

BASE, FLOOR = 10, 9
MODELS = {"models": [{"id": MODEL, "units_of_compute_per_token": 1, "throughput_per_nonce": 1,
                      "validation_threshold_ppm": 900_000, "base_per_token_price": BASE,
                      "min_per_token_price": FLOOR}]}


async def price(net: Network) -> tuple[int, int]:
    """(whole ngonka charged per token, the precise price in millionths) of the model now."""
    [entry] = [p for p in await net.query("inference/prices") if p["model"] == MODEL]
    return entry["price"], entry["precise_price"]


async def test_load_raises_the_price_and_idleness_brings_it_down_to_its_floor(tmp_path):
    params = {"inference": {"grace_period_end_epoch": 0, "utilization_window_s": 10},
              "models": MODELS}
    async with Network.create(tmp_path, params=params) as net:
        await net.wait_ready()
        _, start = await price(net)
        # When 8 clients keep every transfer agent busy for a while (far above the 60% target
        # utilization of the sub-group's 450 tokens per second),
        ids: list[str] = []

        async def client(k: int) -> None:
            async with net.developer_client(k % 3) as http:
                url = f"{net.participants[k % 3].public_url}/v1/chat/completions"
                for n in range(25):
                    r = await http.post(url, json={"model": MODEL, "max_tokens": 32,
                                                   "messages": [{"role": "user",
                                                                 "content": f"load {k} {n}"}]})
                    assert r.status_code == 200, r.text
                    ids.append(r.json()["id"])
        async with trio.open_nursery() as nursery:
            for k in range(8):
                nursery.start_soon(client, k)

        # then the price rises, at most 2% a block,
        async def risen() -> int | None:
            whole, precise = await price(net)
            return whole if whole > BASE else None
        await net.each_block(risen, what="the price to rise above its base")
        # a request priced now locks the raised price on chain,
        async with net.developer_client(0) as http:
            r = await http.post(f"{net.participants[0].public_url}/v1/chat/completions",
                                json={"model": MODEL, "max_tokens": 8, "messages": [
                                    {"role": "user", "content": "priced"}]})
        assert r.status_code == 200, r.text

        async def locked() -> dict | None:
            try:
                rec = await net.query("inference/inference", id=r.json()["id"])
            except Exception:  # noqa: BLE001 - not on chain yet
                return None
            return rec if rec["status"] in ("finished", "validated") else None
        rec = await net.each_block(locked, what="the priced inference's record")
        assert rec["per_token_price"] > BASE
        # and once the load stops, it falls back, never below its floor.
        lowest = [10**18]

        async def floored() -> bool:
            whole, precise = await price(net)
            lowest[0] = min(lowest[0], precise)
            assert whole >= FLOOR
            return precise == FLOOR * 10**6
        await net.each_block(floored, what="the price to reach its floor")
        assert start == BASE * 10**6 and lowest[0] == FLOOR * 10**6
