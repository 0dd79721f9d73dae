"""A single-validator chain node run in-process (the devnet's chain), driven through its RPC and a
raw p2p socket: it produces blocks, commits transfers, and shrugs off bad input of every kind."""

from __future__ import annotations

import msgspec
import pytest
import trio

from chain.app.abci import ERR_CHAIN_ID, ERR_DECODE, ERR_DUPLICATE, ERR_SIGNATURE, ERR_TIMEOUT
from chain.crypto import ed25519
from chain.crypto.secp256k1 import PrivateKey
from chain.node.config import NodeConfig, P2PConfig, RpcConfig
from chain.node.node import ChainNode
from chain.node.setup import (
    add_account,
    add_validator,
    init_home,
    read_genesis,
    validator_key,
    write_genesis,
)
from chain.p2p import EvidenceMsg, NetworkConfig, PeerAddress, TxMsg, VoteMsg
from chain.p2p.network import open_network
from chain.rpc.client import RpcClient, RpcError
from chain.types.block_id import BlockID, PartSetHeader
from chain.types.codec import encode
from chain.types.evidence import duplicate_vote_evidence
from chain.types.msgs import MsgSend
from chain.types.tx import Tx, TxBody, sign_tx
from chain.types.vote import Vote, VoteType, sign_vote
from testermint_py.cluster import TEST_CONSENSUS

ALICE = PrivateKey(bytes([7]) * 32)
BOB = PrivateKey(bytes([8]) * 32)
FUNDS = 10**12


@pytest.fixture
async def node(tmp_path, nursery):
    config = NodeConfig(p2p=P2PConfig(listen="127.0.0.1:0"), rpc=RpcConfig(listen="127.0.0.1:0"))
    home = init_home(tmp_path / "node", "solo-1", config=config)
    add_account(home, ALICE.address, FUNDS)
    add_validator(home, name="v0", pubkey=validator_key(home).public_key, power=1,
                  operator=ALICE.address)
    genesis = read_genesis(home)
    write_genesis(home, msgspec.structs.replace(genesis, consensus=TEST_CONSENSUS))
    return await nursery.start(ChainNode(home.root).run)


def _send_tx(amount: int, *, height: int, chain_id: str = "solo-1", key: PrivateKey = ALICE,
             memo: str = "", expires: int | None = None) -> bytes:
    body = TxBody(chain_id=chain_id, messages=(MsgSend(from_address=key.address,
                                                       to_address=BOB.address, amount=amount),),
                  memo=memo, timeout_height=expires or height + 20)
    return encode(sign_tx(body, key))


async def _post_status(url: str, path: str, *, declared_length: int) -> int:
    """POST headers announcing `declared_length` body bytes, send none, return the status."""
    host, port = url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    try:
        await stream.send_all(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared_length}\r\n\r\n".encode())
        head = b""
        with trio.fail_after(10):
            while b"\r\n" not in head:
                head += await stream.receive_some(4096)
        return int(head.split(b" ")[1])
    finally:
        await stream.aclose()


async def test_blocks_and_a_transfer(node):
    async with RpcClient(node.rpc_url) as rpc:
        await node.wait_for_height(2)
        status = await rpc.status()
        assert status.chain_id == "solo-1" and status.latest_height >= 2
        result = await rpc.broadcast(_send_tx(1234, height=status.latest_height), "commit")
        assert result.code == 0 and result.result.code == 0
        assert (await rpc.query("bank/balance", address=BOB.address))["amount"] == 1234
        assert (await rpc.query("bank/supply"))["amount"] == FUNDS
        committed = await rpc.tx(result.hash)
        assert committed.height == result.height


async def test_bad_txs_are_refused_with_their_reason_and_change_nothing(node):
    async with RpcClient(node.rpc_url) as rpc:
        await node.wait_for_height(3)
        h = (await rpc.status()).latest_height
        good = _send_tx(10, height=h, memo="once")
        tx = msgspec.msgpack.decode(good, type=Tx)
        forged = encode(msgspec.structs.replace(tx, signature=bytes(64)))
        other_signer = encode(msgspec.structs.replace(tx, pubkey=BOB.public_key))
        cases = {
            "garbage": (b"\x93not a tx", ERR_DECODE),
            "bad signature": (forged, ERR_SIGNATURE),
            "signed by another key": (other_signer, ERR_SIGNATURE),
            "wrong chain id": (_send_tx(10, height=h, chain_id="other-1"), ERR_CHAIN_ID),
            "expired": (_send_tx(10, height=h, expires=h - 1), ERR_TIMEOUT),
        }
        for name, (raw, code) in cases.items():
            try:
                result = await rpc.broadcast(raw, "sync")
            except RpcError as e:  # the RPC refuses what does not even decode
                assert e.status == 400, name
                continue
            assert result.code != 0, name
            assert result.code == code, (name, result)
        # A replay of a committed tx is refused.
        first = await rpc.broadcast(good, "commit")
        assert first.code == 0
        again = await rpc.broadcast(good, "sync")
        assert again.code == ERR_DUPLICATE
        # The client refuses to send a tx no node would take,
        with pytest.raises(RpcError) as too_big:
            await rpc.broadcast(b"\x00" * (2 << 20), "sync")
        assert too_big.value.status == 413
        # and the node refuses an oversized body from its Content-Length, before reading it.
        assert await _post_status(node.rpc_url, "/txs", declared_length=64 << 20) == 413
        # Nothing but the one good transfer moved coins, and the chain goes on.
        assert (await rpc.query("bank/balance", address=BOB.address))["amount"] == 10
        await node.wait_for_height((await rpc.status()).latest_height + 2)


async def test_a_malformed_p2p_frame_is_dropped_and_the_node_keeps_going(node):
    host, port = node.network.listen_address
    for junk in (b"\x00\x00\x00\x05hello", b"\xff" * 64, b"GET / HTTP/1.1\r\n\r\n", b""):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            await stream.send_all(junk)
        finally:
            await stream.aclose()
    async with RpcClient(node.rpc_url) as rpc:
        h = (await rpc.status()).latest_height
    await node.wait_for_height(h + 2)


async def test_a_peer_relaying_a_forged_vote_or_tx_is_banned(node, tmp_path):
    host, port = node.network.listen_address
    target = PeerAddress(id=node.node_key.id, host="127.0.0.1", port=port)
    validator = node.validator_key
    for forged in ("vote", "tx"):
        # Given a peer of the same chain that proves its own key,
        config = NetworkConfig(listen_host="127.0.0.1", listen_port=0, persistent_peers=(target,),
                               dial_backoff_initial_s=0.05, dial_backoff_max_s=0.1)
        async with open_network(ed25519.PrivateKey.generate(), chain_id=node.genesis.chain_id,
                                genesis_hash=node.genesis.hash, config=config) as attacker:
            with trio.fail_after(30):
                await attacker.wait_connected(node.node_key.id)
            # when it relays a vote of the current height under the validator's name with a
            # made-up signature (or a tx whose signature is not its signer's),
            if forged == "vote":
                vote = Vote(type=VoteType.PREVOTE, height=node.driver.height, round=0,
                            block_id=None, time_ns=1, validator=validator.id, validator_index=0,
                            signature=bytes(64))
                attacker.broadcast(VoteMsg(vote=vote))
            else:
                tx = msgspec.msgpack.decode(_send_tx(5, height=node.driver.height), type=Tx)
                attacker.broadcast(TxMsg(tx=encode(msgspec.structs.replace(
                    tx, signature=bytes(64)))))
            # then the node hangs up on it and keeps committing.
            with trio.fail_after(30):
                await attacker.wait_disconnected(node.node_key.id)
        await node.wait_for_height(node.store.height() + 1)


async def test_double_sign_evidence_from_a_peer_is_recorded_in_a_block(node):
    await node.wait_for_height(2)
    height = node.store.height()
    key = node.validator_key
    # Given two prevotes the validator signed for two different blocks at one height and round,
    votes = [sign_vote(node.genesis.chain_id, Vote(
        type=VoteType.PREVOTE, height=height, round=0,
        block_id=BlockID(hash=bytes([i]) * 32, parts=PartSetHeader(total=1, root=bytes(32))),
        time_ns=1, validator=key.id, validator_index=0, signature=bytes(64)), key)
        for i in (1, 2)]
    evidence = duplicate_vote_evidence(*votes)
    # when a peer gossips the proof,
    host, port = node.network.listen_address
    config = NetworkConfig(listen_host="127.0.0.1", listen_port=0,
                           persistent_peers=(PeerAddress(id=node.node_key.id, host="127.0.0.1",
                                                         port=port),),
                           dial_backoff_initial_s=0.05, dial_backoff_max_s=0.1)
    async with open_network(ed25519.PrivateKey.generate(), chain_id=node.genesis.chain_id,
                            genesis_hash=node.genesis.hash, config=config) as peer:
        with trio.fail_after(30):
            await peer.wait_connected(node.node_key.id)
        peer.broadcast(EvidenceMsg(evidence=evidence))
        # then a following block carries it, on chain for good.
        with trio.fail_after(30):
            h = height + 1
            while True:
                await node.wait_for_height(h)
                if node.store.load_block(h).evidence:
                    break
                h += 1
    assert node.store.load_block(h).evidence == (evidence,)
