"""Deterministic simulation of a consensus network in one process (TigerBeetle's VOPR, small).

N validators, each a real `ConsensusDriver` over the pure core, a `KVApp`, a `MemoryBlockStore`
and a `MemoryFiles` disk (WAL and sign state), exchange messages through a simulated network: a
virtual clock and a priority queue of deliveries, with a seeded `random.Random` deciding drops,
delays (hence reorders) and duplicates. Until `heal_at_ms` the network is lossy; after it, every
message arrives (still late, reordered, duplicated). One validator crashes at a random moment
(its unsynced disk writes are lost or torn) and restarts later from its WAL, sign state, block
store and committed app state. Optionally one validator is Byzantine and double-signs prevotes.

Invariants are checked as the run goes: no two different blocks (or app hashes) committed at one
height, and no honest validator ever signs two different messages for one height/round/step.
Progress is checked at the end: every validator reaches the target height after the heal.
Everything random comes from the seed, so a failing seed replays exactly; `trace` digests every
step taken so that a test can prove it.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import msgspec

from chain.consensus.blocks import block_id_of, make_block
from chain.consensus.driver import ConsensusDriver, MemoryBlockStore
from chain.consensus.events import (
    BroadcastProposal,
    BroadcastVote,
    EvidenceReceived,
    ProposalReceived,
    RecordEvidence,
    ScheduleTimeout,
    TimeoutFired,
    VotesReceived,
)
from chain.consensus.sign_state import SignStateFile
from chain.consensus.storage import MemoryFiles
from chain.consensus.wal import WAL, read_wal
from chain.crypto import ed25519, secp256k1
from chain.crypto.hashing import blake3_256
from chain.types.block_id import BlockID, PartSetHeader
from chain.types.codec import encode
from chain.types.genesis import ConsensusParams, Genesis, GenesisValidator
from chain.types.vote import Proposal, Vote, sign_proposal, sign_vote
from tests.chain.sim.kvapp import KVApp, KVDisk, ListMempool

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
CHAIN_ID = "gonka-sim"
OPERATOR = secp256k1.PrivateKey(bytes([1]) * 32).address
# Fast timeouts: virtual time is free, but each round costs events.
SIM_PARAMS = ConsensusParams(
    timeout_propose_ms=300, timeout_propose_delta_ms=100, timeout_prevote_ms=100,
    timeout_prevote_delta_ms=100, timeout_precommit_ms=100, timeout_precommit_delta_ms=100,
    timeout_commit_ms=50,
)
REBROADCAST_EVERY_MS = 400
MAX_CATCH_UP_BLOCKS = 8
FAKE_BLOCK_ID = BlockID(hash=blake3_256(b"no such block"),
                        parts=PartSetHeader(total=1, root=bytes(32)))


def validator_key(index: int) -> ed25519.PrivateKey:
    return ed25519.PrivateKey(bytes([100 + index]) * 32)


class InvariantViolated(AssertionError):
    pass


@dataclass(frozen=True)
class SimConfig:
    seed: int
    validators: int = 4
    heights: int = 5
    crash: bool = True
    byzantine: int | None = None
    # Lossy phase: until heal_at_ms, drop and duplicate with these odds, delay up to storm_delay.
    heal_at_ms: int = 3000
    drop: float = 0.2
    duplicate: float = 0.1
    storm_delay_ms: int = 300
    calm_delay_ms: int = 40
    # Give up (progress violated) this long after the heal.
    patience_ms: int = 120_000

    @classmethod
    def random(cls, seed: int, **overrides: object) -> SimConfig:
        """A seed's own fault profile: how lossy, how long, how slow."""
        rng = random.Random(f"config/{seed}")
        values = dict(seed=seed, heal_at_ms=rng.randrange(500, 6000),
                      drop=rng.choice([0.0, 0.1, 0.3, 0.5]), duplicate=rng.choice([0.0, 0.2]),
                      storm_delay_ms=rng.choice([20, 200, 800]),
                      byzantine=rng.choice([None, None, 0, 1, 2, 3]))
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


@dataclass
class SimNode:
    index: int
    key: ed25519.PrivateKey
    files: MemoryFiles = field(default_factory=MemoryFiles)
    store: MemoryBlockStore = field(default_factory=MemoryBlockStore)
    disk: KVDisk = field(default_factory=KVDisk)
    mempool: ListMempool = field(default_factory=ListMempool)
    driver: ConsensusDriver | None = None
    timer: int = 0  # only the timeout with the latest token fires (the ticker's rule)

    @property
    def alive(self) -> bool:
        return self.driver is not None


@dataclass
class SimResult:
    heights: list[int]
    trace: str
    steps: int
    now_ms: int
    evidence_committed: int
    restarts: int


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        powers = [self.rng.randrange(5, 16) for _ in range(config.validators)]
        if config.byzantine is not None:
            # Safety is promised for less than 1/3 of the power: keep the traitor below it.
            others = sum(powers) - powers[config.byzantine]
            powers[config.byzantine] = min(powers[config.byzantine], (others - 1) // 2)
        self.genesis = Genesis(
            chain_id=CHAIN_ID, genesis_time_ns=T0, consensus=SIM_PARAMS,
            validators=tuple(GenesisValidator(name=f"v{i}", pubkey=validator_key(i).public_key,
                                              power=powers[i], operator=OPERATOR)
                             for i in range(config.validators)))
        self.nodes = [SimNode(i, validator_key(i)) for i in range(config.validators)]
        self.now = T0
        self._queue: list[tuple[int, int, str, tuple]] = []
        self._seq = 0
        self._trace = blake3_256(b"sim")
        self.steps = 0
        self.restarts = 0
        self.torn_tails = 0
        self.replayed_events = 0
        self._faults_pending = 0
        # Invariant books: what was decided per height, what each honest validator signed.
        self.decided: dict[int, tuple[bytes, bytes]] = {}
        self.signed: dict[tuple[bytes, int, int, str], bytes] = {}
        self.evidence_committed = 0
        self._byzantine_alt: dict[tuple[int, int], BlockID] = {}

    # -- queue -------------------------------------------------------------------------------

    def _at(self, when: int, kind: str, *payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, kind, payload))

    def _send(self, sender: int, to: int, message: tuple) -> None:
        c = self.config
        storm = self.now < T0 + c.heal_at_ms * MS
        if storm and self.rng.random() < c.drop:
            return
        copies = 2 if self.rng.random() < c.duplicate else 1
        for _ in range(copies):
            delay = self.rng.randrange(1, (c.storm_delay_ms if storm else c.calm_delay_ms) + 1)
            if storm and self.rng.random() < 0.05:
                delay *= 10  # a straggler, rounds late: what locks exist for
            self._at(self.now + delay * MS, "deliver", sender, to, message)

    def _broadcast(self, sender: int, message: tuple) -> None:
        for node in self.nodes:
            if node.index != sender:
                self._send(sender, node.index, message)

    # -- run ---------------------------------------------------------------------------------

    def run(self) -> SimResult:
        c = self.config
        for node in self.nodes:
            self._start(node)
        if c.crash:
            victim = self.rng.randrange(c.validators)
            crash_at = self.rng.randrange(1, max(2, c.heal_at_ms + 1000))
            self._at(T0 + crash_at * MS, "crash", victim)
            self._at(T0 + (crash_at + self.rng.randrange(200, 4000)) * MS, "restart", victim)
            self._faults_pending = 2
        self._at(T0 + REBROADCAST_EVERY_MS * MS, "tick")
        for i in range(3 * c.heights):
            self._at(T0 + self.rng.randrange(0, 3000) * MS, "tx", i)
        deadline = T0 + (c.heal_at_ms + c.patience_ms) * MS
        while not self._done():
            if not self._queue:
                raise InvariantViolated("nothing left to happen")
            when, _, kind, payload = heapq.heappop(self._queue)
            if when > deadline:
                raise InvariantViolated(
                    f"no progress {c.patience_ms} ms after the heal: heights {self._heights()}")
            self.now = when
            self.steps += 1
            self._trace = blake3_256(self._trace + encode((when, kind, _digest(payload))))
            getattr(self, f"_do_{kind}")(*payload)
        return SimResult(heights=self._heights(), trace=self._trace.hex(), steps=self.steps,
                         now_ms=(self.now - T0) // MS,
                         evidence_committed=self.evidence_committed, restarts=self.restarts)

    def _heights(self) -> list[int]:
        return [n.store.height() for n in self.nodes]

    def _done(self) -> bool:
        return (self._faults_pending == 0 and all(n.alive for n in self.nodes)
                and min(self._heights()) >= self.config.heights)

    # -- node lifecycle ----------------------------------------------------------------------

    def _start(self, node: SimNode) -> None:
        app = KVApp(node.disk)

        def on_commit(block, commit, results) -> None:
            node.mempool.committed(block)
            self._check_agreement(block.header.height, block.hash, app.disk.app_hash)
            if node.index == 0:
                self.evidence_committed += len(block.evidence)

        node.driver = ConsensusDriver(
            self.genesis, app, node.store, node.mempool, WAL("wal", node.files),
            SignStateFile("sign_state", node.files), node.key, on_commit=on_commit)
        self._carry_out(node, node.driver.start(self.now))

    def _do_crash(self, index: int) -> None:
        self._faults_pending -= 1
        node = self.nodes[index]
        node.driver = None
        node.timer += 1
        node.files.crash(self.rng)  # unsynced WAL bytes are lost, or torn at a random byte

    def _do_restart(self, index: int) -> None:
        self._faults_pending -= 1
        self.restarts += 1
        node = self.nodes[index]
        found = read_wal("wal", node.files, repair=False)
        self.torn_tails += found.truncated > 0
        self.replayed_events += len(found.events)
        self._start(node)

    # -- inputs ------------------------------------------------------------------------------

    def _do_tick(self) -> None:
        for node in self.nodes:
            if node.alive:
                # Relay everything held: correct nodes gossip what they received.
                self._carry_out(node, node.driver.rebroadcast())  # type: ignore
        self._at(self.now + REBROADCAST_EVERY_MS * MS, "tick")

    def _do_tx(self, i: int) -> None:
        tx = f"k{i}={self.rng.randrange(1000)}".encode()
        for node in self.nodes:
            node.mempool.add(tx)

    def _do_timeout(self, index: int, token: int, timeout: ScheduleTimeout) -> None:
        node = self.nodes[index]
        if node.alive and token == node.timer:
            self._carry_out(node, node.driver.handle(TimeoutFired(  # type: ignore[union-attr]
                height=timeout.height, round=timeout.round, step=timeout.step, now_ns=self.now)))

    def _do_deliver(self, sender: int, to: int, message: tuple) -> None:
        node = self.nodes[to]
        if not node.alive:
            return
        driver = node.driver
        assert driver is not None
        kind = message[0]
        if kind == "blocks":
            for block, commit in message[1]:
                if block.header.height == driver.height:
                    self._carry_out(node, driver.catch_up(block, commit, self.now))
            return
        if kind == "need":
            self._serve_blocks(node, sender, message[1])
            return
        if kind == "evidence":
            self._carry_out(node, driver.handle(EvidenceReceived(evidence=message[1],
                                                                 now_ns=self.now)))
            return
        height = message[1].height
        if height < driver.height:
            self._serve_blocks(node, sender, height)
            return
        if height > driver.height:
            self._send(to, sender, ("need", driver.height))
            return
        if kind == "proposal":
            event = ProposalReceived(proposal=message[1], block=message[2], now_ns=self.now)
        else:
            event = VotesReceived(votes=(message[1],), now_ns=self.now)
        self._carry_out(node, driver.handle(event))

    def _serve_blocks(self, node: SimNode, to: int, from_height: int) -> None:
        last = min(node.store.height(), from_height + MAX_CATCH_UP_BLOCKS - 1)
        blocks = [(node.store.load_block(h), node.store.load_commit(h))
                  for h in range(from_height, last + 1)]
        if blocks:
            self._send(node.index, to, ("blocks", blocks))

    # -- effects -----------------------------------------------------------------------------

    def _carry_out(self, node: SimNode, effects: list) -> None:
        for effect in effects:
            if isinstance(effect, ScheduleTimeout):
                node.timer += 1
                self._at(self.now + effect.duration_ms * MS, "timeout", node.index, node.timer,
                         effect)
            elif isinstance(effect, (BroadcastVote, BroadcastProposal)):
                if isinstance(effect, BroadcastVote):
                    signed, message = effect.vote, ("vote", effect.vote)
                else:
                    signed = effect.proposal
                    message = ("proposal", effect.proposal, effect.block)
                if node.index != self.config.byzantine:
                    self._check_signed(node, signed)
                    self._broadcast(node.index, message)
                elif _signer(signed) == node.key.id:
                    self._send_as_byzantine(node, message)
            elif isinstance(effect, RecordEvidence):
                self._broadcast(node.index, ("evidence", effect.evidence))

    def _send_as_byzantine(self, node: SimNode, message: tuple) -> None:
        """The Byzantine validator equivocates on everything it signs: for a proposal it makes a
        second block for the same round; for a vote, a vote for that other block (or nil, or a
        block that does not exist). Each peer gets the honest version, the other, or both."""
        key = node.key
        if message[0] == "proposal":
            proposal, block = message[1], message[2]
            chain = node.driver.core.chain  # type: ignore[union-attr]
            alt_block = make_block(chain, time_ns=block.header.time_ns,
                                   txs=(*block.txs, f"byz={proposal.round}".encode()),
                                   evidence=block.evidence, proposer=key.id)
            alt = sign_proposal(CHAIN_ID, msgspec.structs.replace(
                proposal, pol_round=-1, block_id=block_id_of(alt_block)), key)
            self._byzantine_alt[(proposal.height, proposal.round)] = alt.block_id
            other: tuple = ("proposal", alt, alt_block)
        else:
            vote = message[1]
            alt_id = self._byzantine_alt.get((vote.height, vote.round))
            if vote.block_id is None:
                target = alt_id or FAKE_BLOCK_ID
            else:
                target = alt_id if alt_id not in (None, vote.block_id) else None
            other = ("vote", sign_vote(CHAIN_ID, msgspec.structs.replace(
                vote, block_id=target), key))
        for peer in self.nodes:
            if peer.index == node.index:
                continue
            choice = self.rng.randrange(3)
            if choice != 1:
                self._send(node.index, peer.index, message)
            if choice != 0:
                self._send(node.index, peer.index, other)

    # -- invariants --------------------------------------------------------------------------

    def _check_agreement(self, height: int, block_hash: bytes, app_hash: bytes) -> None:
        seen = self.decided.setdefault(height, (block_hash, app_hash))
        if seen != (block_hash, app_hash):
            raise InvariantViolated(f"agreement broken at height {height}: {seen[0].hex()} / "
                                    f"{seen[1].hex()} vs {block_hash.hex()} / {app_hash.hex()}")

    def _check_signed(self, node: SimNode, message: Vote | Proposal) -> None:
        if _signer(message) != node.key.id:
            return  # a relayed message (the current proposal in a rebroadcast)
        kind = message.type.name if isinstance(message, Vote) else "PROPOSAL"
        key = (node.key.id, message.height, message.round, kind)
        # Compare the whole signed message: a re-sent one is byte-identical.
        body = encode(message)
        if self.signed.setdefault(key, body) != body:
            raise InvariantViolated(f"validator {node.index} double-signed {key[1:]}")


def _signer(message: Vote | Proposal) -> bytes:
    return message.validator if isinstance(message, Vote) else message.proposer


def _digest(payload: tuple) -> bytes:
    return blake3_256(encode(payload))
