"""The chain node: the trio shell around the pure parts (DESIGN.md section 4, CONVENTIONS.md).

`ChainNode(home).run()` opens the application and the block store, reconciles them with the
consensus WAL (`ConsensusDriver.start`), then runs in one nursery:
  * the p2p `Network` (gossip of txs, proposals and votes; block sync requests and answers);
  * the consensus loop: ONE task feeds the driver every consensus input (peer proposals and votes,
    timeouts from the ticker, blocks from block sync) in arrival order and sends what it returns;
  * the tx intake: txs from peers and from the RPC's async mode, admitted to the mempool in
    batches (one signature batch per call) and gossiped when new;
  * the status beat: every second, our height to peers and our own consensus messages again
    (the core never retransmits by itself);
  * the RPC server.
Every call into the driver, the mempool and the app is synchronous and never awaits, so trio's
cooperative scheduling already serialises them; no locks are needed.

Block sync: peers announce their height (StatusMsg). While a peer has the block of the height we
are deciding, we ask it for that block and its commit and hand both to `driver.catch_up`, which
checks the commit against the validator set before applying the block. This is how a node that
was down, or new with only the genesis file, catches up.

This module decides nothing about the chain itself: validity is the driver's, the mempool's and
the app's business; it moves messages between them and the network, and bans a peer that relays
a message with a bad signature (a vote or proposal of the current height, or a tx), which an
honest node never does.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

import trio

from chain.app.abci import ERR_SIGNATURE, FinalizeBlockResult
from chain.app.app import GonkaApp
from chain.consensus import (
    WAL,
    BroadcastProposal,
    BroadcastVote,
    ConsensusDriver,
    Effect,
    EvidenceReceived,
    ProposalReceived,
    RecordEvidence,
    ScheduleTimeout,
    SignStateFile,
    TimeoutFired,
    TimeoutTicker,
    VotesReceived,
)
from chain.crypto import ed25519
from chain.mempool import AddResult, Mempool
from chain.node.config import ConfigError, NodeConfig, load_config, split_host_port
from chain.node.home import NodeHome
from chain.node.setup import node_key, read_genesis, validator_key
from chain.node.view import ChainNodeView
from chain.p2p import (
    BlockRequest,
    BlockResponse,
    EvidenceMsg,
    Network,
    NetworkConfig,
    NoBlockResponse,
    ProposalMsg,
    StatusMsg,
    TxMsg,
    VoteMsg,
    parse_peer_list,
)
from chain.p2p.network import PeerConnected, PeerDisconnected, Received
from chain.rpc.app import RpcConfig as RpcServerConfig
from chain.rpc.server import serve_rpc
from chain.store.blocks import BlockStore
from chain.types.block import Block
from chain.types.commit import Commit
from chain.types.vote import verify_proposal, verify_vote

log = logging.getLogger("chain.node")

# How often we tell peers our height and resend our own consensus messages.
STATUS_INTERVAL_S = 1.0
# A block requested from a peer that has not come within this time is asked again (elsewhere).
BLOCK_REQUEST_TIMEOUT_S = 3.0
# Most txs admitted in one mempool call (one signature batch).
TX_BATCH = 2000
# How long a peer that sent a badly signed message is refused.
BAN_S = 60.0
# Proposals and votes of up to this many heights ahead are kept until their height begins.
FUTURE_HEIGHTS = 2
MAX_HELD_PER_HEIGHT = 10_000


class ChainNode:
    def __init__(self, root: Path, *, config: NodeConfig | None = None) -> None:
        self.home = NodeHome(Path(root))
        self.config = config or load_config(self.home.config_file)
        self.genesis = read_genesis(self.home)
        self.genesis.validate()
        self.node_key: ed25519.PrivateKey = node_key(self.home)
        self.validator_key: ed25519.PrivateKey | None = validator_key(self.home)
        try:  # peers and ports are checked now, so that a bad config never half-starts a node
            self._network_config = self._p2p_config()
        except ValueError as e:
            raise ConfigError(self.home.config_file, str(e)) from None
        self.app: GonkaApp | None = None
        self.store: BlockStore | None = None
        self.mempool: Mempool | None = None
        self.driver: ConsensusDriver | None = None
        self.network: Network | None = None
        self.rpc_url: str = ""
        self._height_changed = trio.Event()
        self._peer_heights: dict[bytes, int] = {}
        self._requested: dict[int, float] = {}
        self._future: dict[int, list[tuple]] = {}
        self._consensus_send: trio.MemorySendChannel | None = None
        self._tx_send: trio.MemorySendChannel | None = None

    # -- what the RPC view uses ----------------------------------------------------------------

    async def wait_for_height(self, height: int) -> None:
        while self.store.height() < height:
            await self._height_changed.wait()

    def catching_up(self) -> bool:
        ours = self.store.height()
        return any(h > ours + 1 for h in self._peer_heights.values())

    def voting_power(self) -> int:
        if self.validator_key is None or self.driver is None or self.driver.core is None:
            return 0
        found = self.driver.core.chain.validators.by_id(self.validator_key.id)
        return found[1].power if found is not None else 0

    def submit_txs(self, raws: list[bytes], source_peer: bytes | None = None) -> list[AddResult]:
        """Admit txs to the mempool now and gossip the new ones."""
        results = self.mempool.add_batch(raws, source_peer)
        for raw, result in zip(raws, results, strict=True):
            if result.admitted:
                self.network.broadcast(TxMsg(tx=raw), except_peer=source_peer)
        # Honest nodes check signatures before they gossip a tx, so a peer that sends a badly
        # signed one is broken or hostile.
        if source_peer is not None and any(r.code == ERR_SIGNATURE for r in results):
            self._punish(source_peer, "sent a tx with a bad signature")
        return results

    def submit_async(self, raw: bytes) -> bool:
        """Queue a tx for the intake task; False when the queue is full."""
        try:
            self._tx_send.send_nowait((raw, None))
        except trio.WouldBlock:
            return False
        return True

    # -- running -------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[ChainNode] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        self.home.data_dir.mkdir(parents=True, exist_ok=True)
        with GonkaApp(self.home.state_db) as app, BlockStore(self.home.blocks_db) as store:
            self.app, self.store = app, store
            self.mempool = Mempool(
                app, max_txs=self.config.mempool.max_txs, max_bytes=self.config.mempool.max_bytes,
                max_per_sender=self.config.mempool.max_per_sender, height=store.height())
            self.driver = ConsensusDriver(
                self.genesis, app, store, self.mempool, WAL(str(self.home.wal_file)),
                SignStateFile(str(self.home.sign_state_file)), self.validator_key,
                on_commit=self._on_commit)
            consensus_send, consensus_recv = trio.open_memory_channel(1024)
            tx_send, tx_recv = trio.open_memory_channel(20_000)
            self._consensus_send, self._tx_send = consensus_send, tx_send
            ticker = TimeoutTicker(consensus_send)
            async with trio.open_nursery() as nursery:
                self.network = Network(self.node_key, chain_id=self.genesis.chain_id,
                                       genesis_hash=self.genesis.hash,
                                       config=self._network_config)
                await nursery.start(self.network.run)
                await nursery.start(ticker.run)
                self._carry_out(self.driver.start(time.time_ns()), ticker)
                nursery.start_soon(self._consensus_loop, consensus_recv, ticker)
                nursery.start_soon(self._network_loop)
                nursery.start_soon(self._tx_intake, tx_recv)
                nursery.start_soon(self._status_beat, ticker)
                host, port = split_host_port(self.config.rpc.listen)
                self.rpc_url = await nursery.start(
                    lambda task_status: serve_rpc(
                        ChainNodeView(self, self.config.rpc.commit_timeout_s), host, port,
                        config=RpcServerConfig(max_body_bytes=self.config.rpc.max_body_bytes),
                        task_status=task_status))
                log.info("node %s up: p2p %s, rpc %s, height %d", self.node_key.id.hex(),
                         self.network.listen_address, self.rpc_url, store.height())
                task_status.started(self)

    def _p2p_config(self) -> NetworkConfig:
        p2p = self.config.p2p
        host, port = split_host_port(p2p.listen)
        return NetworkConfig(
            listen_host=host, listen_port=port, external_address=p2p.external_address,
            moniker=self.config.moniker,
            persistent_peers=tuple(parse_peer_list(",".join(p2p.persistent_peers))),
            max_frame_bytes=max(p2p.max_frame_bytes, NetworkConfig().max_frame_bytes),
            dial_backoff_initial_s=min(0.5, p2p.dial_backoff_max_s),
            dial_backoff_max_s=p2p.dial_backoff_max_s)

    # -- the consensus loop: the only task that feeds the driver --------------------------------

    async def _consensus_loop(self, inbox: trio.MemoryReceiveChannel, ticker: TimeoutTicker
                              ) -> None:
        # Items to handle before reading the inbox again: one taken while batching votes, and
        # messages of a height that has just begun, held back while it was still in the future.
        pending: deque = deque()
        while True:
            item = pending.popleft() if pending else await inbox.receive()
            now = time.time_ns()
            match item:
                case TimeoutFired():
                    effects = self.driver.handle(item)
                case (_, ProposalMsg(proposal=proposal, block=block)):
                    if self._hold_if_future(proposal.height, item):
                        continue
                    effects = self.driver.handle(ProposalReceived(proposal, block, now))
                case (_, VoteMsg()):
                    # Batch the votes waiting behind this one: one signature check per batch.
                    votes = []
                    while True:
                        if not self._hold_if_future(item[1].vote.height, item):
                            votes.append(item[1].vote)
                        if len(votes) >= 1000:
                            break
                        try:
                            item = pending.popleft() if pending else inbox.receive_nowait()
                        except trio.WouldBlock:
                            break
                        if not (isinstance(item, tuple) and isinstance(item[1], VoteMsg)):
                            pending.appendleft(item)
                            break
                    if not votes:
                        continue
                    effects = self.driver.handle(VotesReceived(tuple(votes), now))
                case (_, EvidenceMsg(evidence=evidence)):
                    effects = self.driver.handle(EvidenceReceived(evidence=evidence, now_ns=now))
                case (_, BlockResponse(block=block, commit=commit)):
                    self._requested.pop(block.header.height, None)
                    if block.header.height != self.driver.height:
                        continue
                    effects = self.driver.catch_up(block, commit, now)
                case _:
                    continue
            self._carry_out(effects, ticker)
            # A commit may have started a height whose messages arrived early: hand them over.
            pending.extend(self._future.pop(self.driver.height, ()))
            for stale in [h for h in self._future if h < self.driver.height]:
                del self._future[stale]

    def _hold_if_future(self, height: int, item: tuple) -> bool:
        """Keep a proposal or vote of a coming height (the core only takes its current one);
        gossip reaches a node once, so a message dropped now would never come back."""
        if height <= self.driver.height:
            return False
        if height <= self.driver.height + FUTURE_HEIGHTS:
            held = self._future.setdefault(height, [])
            if len(held) < MAX_HELD_PER_HEIGHT:
                held.append(item)
        return True

    def _carry_out(self, effects: list[Effect], ticker: TimeoutTicker) -> None:
        for effect in effects:
            match effect:
                case ScheduleTimeout():
                    ticker.schedule(effect)
                case BroadcastProposal(proposal=proposal, block=block):
                    self.network.broadcast(ProposalMsg(proposal=proposal, block=block))
                case BroadcastVote(vote=vote):
                    self.network.broadcast(VoteMsg(vote=vote))
                case RecordEvidence(evidence=evidence):
                    # The core keeps it for the blocks it proposes; peers get it so that
                    # whoever proposes next puts it on chain.
                    log.warning("double signing by validator %s at height %d",
                                evidence.validator.hex(), evidence.height)
                    self.network.broadcast(EvidenceMsg(evidence=evidence))

    def _on_commit(self, block: Block, commit: Commit, results: FinalizeBlockResult) -> None:
        height = block.header.height
        self.mempool.update(height, block.txs)
        self._requested = {h: t for h, t in self._requested.items() if h > height}
        self._height_changed.set()
        self._height_changed = trio.Event()
        if self.network is not None:
            self.network.broadcast(StatusMsg(height=height, base_height=self.store.base_height()))
        log.info("committed height %d: %d txs", height, len(block.txs))

    # -- the network loop: route each peer message ---------------------------------------------

    async def _network_loop(self) -> None:
        async for event in self.network.events:
            match event:
                case PeerConnected(peer_id=peer):
                    self.network.send(peer, self._status())
                case PeerDisconnected(peer_id=peer):
                    self._peer_heights.pop(peer, None)
                case Received(peer_id=peer, msg=TxMsg(tx=raw)):
                    try:
                        self._tx_send.send_nowait((raw, peer))
                    except trio.WouldBlock:
                        pass  # gossip is best effort; the sender's node still holds the tx
                case Received(peer_id=peer, msg=ProposalMsg() | VoteMsg() as msg):
                    if not self._signature_ok(msg):
                        self._punish(peer, f"sent a {type(msg).__name__} with a bad signature")
                        continue
                    await self._consensus_send.send((peer, msg))
                    self.network.broadcast(msg, except_peer=peer)
                case Received(peer_id=peer, msg=StatusMsg(height=height)):
                    self._peer_heights[peer] = height
                    self._request_blocks()
                case Received(peer_id=peer, msg=BlockRequest(height=height)):
                    self.network.send(peer, self._block_response(height))
                case Received(peer_id=peer, msg=BlockResponse() | EvidenceMsg() as msg):
                    # Evidence is checked by the core (both signatures, a known validator);
                    # relaying it is safe either way, since p2p de-duplicates it.
                    await self._consensus_send.send((peer, msg))
                    if isinstance(msg, EvidenceMsg):
                        self.network.broadcast(msg, except_peer=peer)
                case Received(peer_id=peer, msg=NoBlockResponse(height=height)):
                    self._requested.pop(height, None)

    def _signature_ok(self, msg: ProposalMsg | VoteMsg) -> bool:
        """False only for a message of the height being decided whose signer is not a validator
        or whose signature does not verify; other heights are the core's to judge (their
        validator sets may differ from ours)."""
        chain = self.driver.core.chain
        if isinstance(msg, VoteMsg):
            signer, height = msg.vote.validator, msg.vote.height
        else:
            signer, height = msg.proposal.proposer, msg.proposal.height
        if height != chain.height:
            return True
        found = chain.validators.by_id(signer)
        if found is None:
            return False
        pubkey = found[1].pubkey
        if isinstance(msg, VoteMsg):
            return verify_vote(chain.chain_id, msg.vote, pubkey)
        return verify_proposal(chain.chain_id, msg.proposal, pubkey)

    def _punish(self, peer: bytes, reason: str) -> None:
        """A peer that relays what no honest node would is disconnected and kept away a while."""
        log.warning("banning peer %s for %d s: it %s", peer.hex(), BAN_S, reason)
        self.network.ban(peer, reason, BAN_S)

    def _status(self) -> StatusMsg:
        return StatusMsg(height=self.store.height(), base_height=self.store.base_height())

    def _block_response(self, height: int) -> BlockResponse | NoBlockResponse:
        block, commit = self.store.load_block(height), self.store.load_commit(height)
        if block is None or commit is None:
            return NoBlockResponse(height=height)
        return BlockResponse(block=block, commit=commit)

    def _request_blocks(self) -> None:
        """Ask a peer that has it for the block we are deciding, unless already asked recently."""
        want = self.driver.height
        asked = self._requested.get(want)
        now = trio.current_time()
        if asked is not None and now - asked < BLOCK_REQUEST_TIMEOUT_S:
            return
        holders = sorted(p for p, h in self._peer_heights.items() if h >= want)
        if not holders:
            return
        # Rotate through holders on repeated requests so that one bad peer cannot stall us.
        peer = holders[int(now / BLOCK_REQUEST_TIMEOUT_S) % len(holders)]
        if self.network.send(peer, BlockRequest(height=want)):
            self._requested[want] = now

    # -- tx intake -----------------------------------------------------------------------------

    async def _tx_intake(self, inbox: trio.MemoryReceiveChannel) -> None:
        async for first in inbox:
            batch = [first]
            while len(batch) < TX_BATCH:
                try:
                    batch.append(inbox.receive_nowait())
                except trio.WouldBlock:
                    break
            # Group by source so that gossip is not sent back to the peer a tx came from.
            by_peer: dict[bytes | None, list[bytes]] = {}
            for raw, peer in batch:
                by_peer.setdefault(peer, []).append(raw)
            for peer, raws in by_peer.items():
                self.submit_txs(raws, peer)
            await trio.lowlevel.checkpoint()

    # -- status beat ---------------------------------------------------------------------------

    async def _status_beat(self, ticker: TimeoutTicker) -> None:
        while True:
            await trio.sleep(STATUS_INTERVAL_S)
            self.network.broadcast(self._status())
            self._carry_out(self.driver.rebroadcast(), ticker)
            self._request_blocks()
