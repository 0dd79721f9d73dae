"""Acceptance scenario: a host joins a running network (gonka-testermint.md section 1.4 and
section 5, item 4, adapted: the new chain node syncs blocks from its peers; we have no state
sync). Its API node registers it with its consensus key, its ML node takes part in the next PoC,
and from the epoch that PoC forms it is a weighted member, a validator and an executor."""

from __future__ import annotations

import pytest

from testermint_py.network import MODEL, Network

pytestmark = pytest.mark.slow


async def test_a_new_host_syncs_registers_mines_and_serves(tmp_path):
    params = {"epochs": {"epoch_length": 40, "first_poc_start": 20}}
    async with Network.create(tmp_path, n=3, joiners=1, params=params) as net:
        await net.wait_ready()
        # When a fourth host starts during epoch 1 (its account funded in the genesis),
        new = net.join()
        account = net.participants[new].account
        await net.wait_up()
        # then its chain node catches up with the others,
        async with net.rpc(0) as rpc:
            top = (await rpc.status()).latest_height
        await net.wait_height(top, i=new)

        # its API node registers it,
        async def registered() -> dict | None:
            try:
                return await net.query("participants/participant", address=account)
            except Exception:  # noqa: BLE001 - not a participant yet
                return None
        participant = await net.each_block(registered, what="the new host's registration")
        assert participant["inference_url"] == net.participants[new].public_url

        # and the first epoch formed after it registered counts it with its PoC weight,
        async def member() -> tuple[int, int] | None:
            epoch = (await net.status())["epoch"]
            group = await net.query("epochs/group", epoch=str(epoch))
            weight = next((m["weight"] for m in group["members"]
                           if m["address"] == account), 0)
            return (epoch, weight) if weight > 0 else None
        epoch, weight = await net.each_block(member, what="the new host in an epoch group")
        assert weight == 150
        validators = {v["operator"]: v["power"] for v in await net.query("validators/set")}
        assert validators[account] > 0
        # and transfer agents send it work.
        await net.wait_stage(epoch, "inference")
        async with net.developer_client(0) as http:
            executors = set()
            for k in range(30):
                r = await http.post(f"{net.participants[0].public_url}/v1/chat/completions",
                                    json={"model": MODEL, "max_tokens": 8, "messages": [
                                        {"role": "user", "content": f"joiner {k}"}]})
                assert r.status_code == 200, r.text
                executors.add(r.headers["x-executor-address"])
                if account in executors:
                    break
        assert account in executors
