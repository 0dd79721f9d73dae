"""The driver: one validator committing alone, validator updates taking effect at h + 2, the
start-up handshake replaying what the application missed, and block sync."""

from __future__ import annotations

import copy

import msgspec
import pytest

from chain.consensus.blocks import block_id_of
from chain.consensus.chain_state import EMPTY_RESULTS_HASH, genesis_validator_updates
from chain.consensus.driver import ConsensusDriver, HandshakeError, MemoryBlockStore
from chain.consensus.events import ScheduleTimeout, TimeoutFired, VotesReceived
from chain.consensus.sign_state import SignStateFile
from chain.consensus.storage import MemoryFiles
from chain.consensus.validators import ValidatorSet
from chain.consensus.vote_set import verify_commit
from chain.consensus.wal import WAL, read_wal
from chain.crypto import ed25519
from chain.types.genesis import ConsensusParams
from chain.types.vote import VoteType
from tests.chain.sim.fixtures import CHAIN_ID, KEYS, MS, T0, genesis, vote
from tests.chain.sim.kvapp import KVApp, KVDisk, ListMempool

PARAMS = ConsensusParams(timeout_commit_ms=1000)


class Devnet:
    """A single validator (devnet): it proposes, votes and commits every block alone."""

    def __init__(self, powers=(10,), key=KEYS[0], store=None, files=None, disk=None) -> None:
        self.genesis = genesis(powers, PARAMS)
        self.app = KVApp(disk)
        self.store = store or MemoryBlockStore()
        self.files = files or MemoryFiles()
        self.mempool = ListMempool()
        self.committed: list = []
        self.driver = ConsensusDriver(
            self.genesis, self.app, self.store, self.mempool, WAL("wal", self.files),
            SignStateFile("sign_state", self.files), key, on_commit=self._on_commit)
        self.now = T0
        self.effects: list = []

    def _on_commit(self, block, commit, results) -> None:
        self.mempool.committed(block)
        self.committed.append((block, commit, results))

    def start(self) -> Devnet:
        self.effects = self.driver.start(self.now)
        return self

    def run_until(self, height: int, limit: int = 100) -> None:
        """Fire the pending timeout, again and again, until `height` is stored."""
        for _ in range(limit):
            if self.store.height() >= height:
                return
            timeout = [e for e in self.effects if isinstance(e, ScheduleTimeout)][-1]
            self.now += timeout.duration_ms * MS
            self.effects = self.driver.handle(TimeoutFired(
                height=timeout.height, round=timeout.round, step=timeout.step, now_ns=self.now))
        raise AssertionError(f"stuck at height {self.store.height()}")


def test_a_single_validator_commits_every_block_alone():
    net = Devnet().start()
    net.mempool.add(b"a=1")
    net.mempool.add(b"b=2")
    net.run_until(4)
    # The txs went into block 1 and the app applied them; the mempool is empty again.
    assert net.store.load_block(1).txs == (b"a=1", b"b=2")
    assert net.app.disk.state == {"a": "1", "b": "2"} and net.mempool.txs == []
    vset = ValidatorSet.new(genesis_validator_updates(net.genesis))
    for h in range(2, 5):
        block, prev = net.store.load_block(h), net.store.load_block(h - 1)
        # Each block follows the previous one: id, commit signed by the set, time, app hash.
        assert block.header.last_block_id == block_id_of(prev)
        assert block.header.time_ns > prev.header.time_ns
        assert block.header.app_hash == net.app.disk.app_hash
        verify_commit(CHAIN_ID, vset, h - 1, block_id_of(prev), block.last_commit)
    assert [c[0].header.height for c in net.committed] == [1, 2, 3, 4]
    assert net.store.load_block(1).header.last_results_hash == EMPTY_RESULTS_HASH


def test_validator_updates_take_effect_two_heights_later():
    # Given a devnet whose only validator has power 10,
    net = Devnet().start()
    newcomer = ed25519.PrivateKey(bytes([77]) * 32)
    before = ValidatorSet.new(genesis_validator_updates(net.genesis))
    # when block 1 carries a tx that adds a validator of power 1,
    net.mempool.add(f"val:{newcomer.public_key.hex()}=1".encode())
    net.run_until(4)
    after = before.apply_updates(net.store.load_results(1).validator_updates)
    assert len(after) == 2 and after.has(newcomer.id)
    headers = {h: net.store.load_block(h).header for h in range(1, 5)}
    # then block 2 is still signed for by the old set, which announces the new one as next,
    assert headers[2].validators_hash == before.hash()
    assert headers[2].next_validators_hash == after.hash()
    # and block 3 is the first whose validator set has it.
    assert headers[3].validators_hash == after.hash()
    # Its commit (carried by block 4) lists both validators; 10 of 11 signed, enough.
    commit_3 = net.store.load_block(4).last_commit
    assert len(commit_3.signatures) == 2


def test_the_handshake_replays_a_block_the_application_did_not_commit():
    # Given a node that stored block 3 but crashed before its application committed it
    # (the application's durable state is still that of block 2),
    net = Devnet().start()
    disks = {}
    original = net.driver.on_commit

    def snapshot(block, commit, results):
        original(block, commit, results)
        disks[block.header.height] = copy.deepcopy(net.app.disk)

    net.driver.on_commit = snapshot
    for h in range(1, 4):
        net.mempool.add(f"k{h}=v{h}".encode())
    net.run_until(3)
    assert net.store.height() == 3
    # when it restarts,
    restarted = Devnet(store=net.store, files=net.files, disk=copy.deepcopy(disks[2])).start()
    # then the application replayed block 3 and agrees with the node that never crashed,
    assert restarted.app.info().last_height == 3
    assert restarted.app.disk.app_hash == disks[3].app_hash
    assert restarted.driver.height == 4
    # and the chain goes on from there.
    restarted.run_until(5)
    assert restarted.store.load_block(4).header.app_hash == disks[3].app_hash


def test_a_restart_before_the_first_block_does_not_run_init_chain_again():
    # Given a node whose application committed its genesis state, stopped before block 1,
    first = Devnet(powers=(10, 10)).start()  # a second validator that never shows up
    genesis_hash = first.app.disk.app_hash
    assert genesis_hash and first.store.height() == 0
    calls = []
    restarted = Devnet(powers=(10, 10), store=first.store, files=first.files,
                       disk=first.app.disk)
    restarted.app.init_chain = lambda g: calls.append(g)  # type: ignore[method-assign]
    # when it starts again, then it works from that state without a second init_chain.
    restarted.start()
    assert calls == [] and restarted.driver.core.chain.app_hash == genesis_hash


def test_messages_heard_before_are_not_logged_again():
    # Given one validator of four, started (it waits for the others),
    net = Devnet(powers=(10, 10, 10, 10)).start()
    vset = net.driver.core.chain.validators
    votes = tuple(vote(vset, k, VoteType.PREVOTE, 1, 0, None) for k in KEYS[1:3])
    net.driver.handle(VotesReceived(votes=votes, now_ns=T0))
    logged = net.files.read("wal")
    # when peers re-send the same votes, then nothing is written or done,
    assert net.driver.handle(VotesReceived(votes=votes, now_ns=T0 + 1)) == []
    assert net.files.read("wal") == logged
    # and a batch mixing old and new votes is logged with the new ones only.
    third = vote(vset, KEYS[3], VoteType.PREVOTE, 1, 0, None)
    net.driver.handle(VotesReceived(votes=(*votes, third), now_ns=T0 + 2))
    last = read_wal("wal", net.files).events[-1]
    assert isinstance(last, VotesReceived) and last.votes == (third,)


def test_an_application_ahead_of_the_block_store_is_a_handshake_error():
    net = Devnet().start()
    net.run_until(2)
    ahead = KVDisk(height=5, app_hash=bytes(32))
    with pytest.raises(HandshakeError, match="height 5"):
        Devnet(store=net.store, files=net.files, disk=ahead).start()


def test_a_restart_finds_its_wal_rotated_to_the_current_height():
    net = Devnet().start()
    net.run_until(3)
    assert read_wal("wal", net.files).end_height == 3
    again = Devnet(store=net.store, files=net.files, disk=net.app.disk).start()
    assert again.driver.height == 4
    again.run_until(5)


def test_block_sync_applies_proven_blocks_and_refuses_a_forged_commit():
    # Given a devnet that produced 3 blocks, and a follower (no key) starting from genesis,
    source = Devnet().start()
    source.mempool.add(b"x=1")
    source.run_until(3)
    follower = Devnet(key=None).start()
    block_1, commit_1 = source.store.load_block(1), source.store.load_commit(1)
    # when it is handed block 1 with a commit whose signature was tampered with,
    bad_sig = msgspec.structs.replace(commit_1.signatures[0], signature=bytes(64))
    forged = msgspec.structs.replace(commit_1, signatures=(bad_sig,))
    follower.driver.catch_up(block_1, forged, T0)
    # then nothing happens,
    assert follower.store.height() == 0 and follower.driver.height == 1
    # and with the real commits it applies the blocks one by one, to the same app state.
    for h in range(1, 4):
        follower.driver.catch_up(source.store.load_block(h), source.store.load_commit(h), T0)
    assert follower.store.height() == 3
    assert follower.app.disk.app_hash == source.app.disk.app_hash
    assert follower.app.disk.state == {"x": "1"}
