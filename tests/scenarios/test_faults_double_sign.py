"""Fault scenario: a Byzantine validator that double-signs (gonka-testermint.md's fault list;
DESIGN.md section 8). Participant 3 runs a second chain node with its consensus key
(`testermint_py.faults.start_twin`); the honest nodes catch the conflicting votes, the evidence
goes on chain, and the application takes participant 3's power and part of its collateral
(PROTOCOL.md, "evidence"). Everything is observed through the RPC."""

from __future__ import annotations

import pytest

from chain.node.setup import validator_key
from chain.types.msgs import MsgDepositCollateral
from testermint_py.faults import send_tx, start_twin
from testermint_py.network import Network, NetworkError

pytestmark = pytest.mark.slow

DEPOSIT = 1_000_000
SLASH_BPS = 500  # collateral.slash_double_sign_bps (default)
TRAITOR = 3


def attributes(event) -> dict[str, str]:
    return {a.key: a.value for a in event.attributes}


async def test_a_double_signing_validator_is_recorded_and_loses_its_power(tmp_path):
    async with Network.create(tmp_path, n=4) as net:
        await net.wait_ready()
        traitor = net.participants[TRAITOR]
        traitor_id = validator_key(traitor.chain_home).id.hex()
        # Given participant 3 holds collateral and a quarter of the voting power,
        await send_tx(net, TRAITOR, MsgDepositCollateral(participant=traitor.account,
                                                         amount=DEPOSIT))
        powers = {v["operator"]: v["power"] for v in await net.query("validators/set")}
        assert powers == {p.account: 150 for p in net.participants}

        # when a second node signs with its consensus key, until the chain has punished it,
        async def punished() -> dict | None:
            if not twin.running:
                raise NetworkError(f"the twin exited:\n{twin.log_tail()}")
            records = await net.query("evidence/double_signs")
            return records[0] if records else None

        twin = start_twin(net, TRAITOR)
        try:
            record = await net.each_block(punished, what="double signing punished on chain")
        finally:
            twin.stop()

        # then the evidence of its two votes is in the block that punished it,
        async with net.rpc(0) as rpc:
            block = await rpc.block(record["height"])
            assert block is not None
            [evidence] = [e for e in block.evidence if e.hash == record["evidence_hash"]]
            assert evidence.validator == traitor_id
            assert evidence.block_hashes[0] != evidence.block_hashes[1]
            # with the double_sign event naming the validator, the height and the penalty,
            async with rpc.events(from_height=record["height"],
                                  types=("double_sign",)) as frames:
                frame = await frames.receive()
        assert frame.height == record["height"]
        [event] = [attributes(e) for e in frame.events]
        burned = DEPOSIT * SLASH_BPS // 10_000
        assert (event["validator"], event["participant"], event["evidence_height"],
                event["power"], event["collateral_burned"]) == (
            traitor_id, traitor.account, str(evidence.height), "150", str(burned))
        # its validator power is 0 and its collateral is cut by exactly 5%,
        powers = {v["operator"]: v["power"] for v in await net.query("validators/set")}
        assert powers == {p.account: 150 for p in net.participants[:TRAITOR]}
        view = await net.query("collateral/participant", address=traitor.account)
        assert (view["active"], view["unbonding"]) == (DEPOSIT - burned, [])
        # the other three keep committing blocks, signed by them alone once the update applies
        # (two heights after the block),
        later = await net.wait_height(record["height"] + 4)
        async with net.rpc(0) as rpc:
            commit = await rpc.commit(later - 1)
        assert commit is not None
        assert len(commit.signatures) == 3
        assert traitor_id not in {s.validator for s in commit.signatures}
        # and the honest nodes agree on every block, with every coin accounted for.
        await net.check_invariants(nodes=[0, 1, 2])
