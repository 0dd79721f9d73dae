"""`PocOrchestrator`: the host's side of each epoch's PoC, driven block by block (DESIGN.md
section 5 "PoC on chain"; PROTOCOL.md section 4; gonka-api-node.md sections 6, 7, 9).

For every committed height the orchestrator reads the epoch stage (`epochs/current`) and:

* at the PoC of epoch N (from its start P): draws and persists a fresh 32-byte validation seed
  and commits to it (`MsgSubmitSeed`, once; `api.poc.seeds`); builds the PoC session (the block
  hash of P from the RPC, this host's account public key, the chain's PoC function and fraud
  test params, the callback URL of this node's callbacks server) and hands it to the broker,
  which starts generation on every node the chain does not keep serving;
* takes the ML nodes' `ProofBatch` callbacks into the epoch's `NonceStore`
  (`accept_batch`, behind `callbacks_blueprint`);
* during the Sprint and the commit exchange sends `MsgPocCommit{epoch, count, root}` after a
  durable `snapshot()`, whenever the count grew, at most once every `commit_every_blocks`
  blocks, and always at the last height whose tx can still land by the commit deadline C;
* serves `POST /v1/poc/proofs` (`proofs`) from the snapshot matching the commit the chain
  recorded;
* in the PoC validation stage, if this host holds weight in the effective epoch: for every other
  host with a commit, samples positions (this host's key, the block hash of C: sealed after every
  commit could change), fetches the proofs from the host's `inference_url`, checks them against
  the commit (`verify_response`), has an ML node in PoC validation recompute the distances, and
  sends `MsgPocValidation` with the binomial verdict. A host whose answer fails or never comes
  has every sampled nonce counted failed; a validator with no ML node able to recompute does not
  vote (it cannot judge honestly either way);
* calls `broker.reconcile(StageInfo)` with the stage, this host's kept (`poc_slot`) nodes and
  model assignments from the effective epoch's group, and the running PoC session.

The per-block work is idempotent (state-based, not edge-triggered), so a missed block or a
restart only delays it. Every task lives in the nursery of `run()`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import trio

from api.broker.broker import Broker
from api.broker.mlnode_client import MlNodeError
from api.broker.state import POC_STAGES, PocSession, StageInfo
from api.chain.sender import HEIGHTS_ONLY, TxSender
from api.mlnodes import NoMlNode
from api.poc.nonce_store import (
    BatchMerge,
    ForeignBatch,
    NonceStore,
    NonceStoreError,
    NothingToCommit,
    Snapshot,
)
from api.poc.proofs import (
    PocProofError,
    PocProofRequest,
    PocProofResponse,
    VerifiedLeaf,
    verify_response,
)
from api.poc.sampling import sample_positions, verdict
from api.poc.seeds import SeedRecord, SeedStore
from chain.rpc.client import RpcClient, RpcError
from chain.types.msgs import MsgPocCommit, MsgPocValidation, MsgSubmitSeed
from chain.types.poc import PocParams, ProofBatch, ValidatedBatch

log = logging.getLogger(__name__)

PROOFS_PATH = "/v1/poc/proofs"
CALLBACK_PREFIX = "/poc"   # the ML node POSTs to {url}/generated and {url}/validated


# -- what the orchestrator reads from the chain (the fields it needs) ----------------------------


class ChainStages(msgspec.Struct, frozen=True):
    poc_start: int
    sprint_end_exclusive: int
    commit_deadline: int
    validation_start: int
    validation_end: int


class EpochInfoView(msgspec.Struct, frozen=True):
    effective_epoch: int
    upcoming_epoch: int | None
    poc: ChainStages
    stage: str | None = None


class NodeWeightView(msgspec.Struct, frozen=True):
    node_id: str
    model: str
    weight: int
    poc_slot: bool


class MemberView(msgspec.Struct, frozen=True):
    address: str
    weight: int
    ml_nodes: tuple[NodeWeightView, ...] = ()
    seed_commitment: bytes = b""


class GroupView(msgspec.Struct, frozen=True):
    members: list[MemberView]


class CommitView(msgspec.Struct, frozen=True):
    participant: str
    count: int
    root: bytes
    height: int


class PocChainParamsView(msgspec.Struct, frozen=True):
    validation_sample_size: int
    mismatch_rate_ppb: int
    fraud_threshold_ppb: int


class ParticipantView(msgspec.Struct, frozen=True):
    address: str
    inference_url: str


class AccountView(msgspec.Struct, frozen=True):
    address: str
    pubkey: bytes | None = None


# -- errors -------------------------------------------------------------------------------------


class PocServiceError(Exception):
    """A refusal of the PoC endpoints; `status` is the HTTP answer."""

    status = 500


class NoSession(PocServiceError):
    status = 503

    def __init__(self, height: int) -> None:
        super().__init__(f"no PoC session for block height {height} is known yet; retry")


class StaleBatch(PocServiceError):
    status = 422   # the ML node drops it instead of retrying

    def __init__(self, reason: str) -> None:
        super().__init__(reason)


class NoCommitment(PocServiceError):
    status = 404

    def __init__(self, participant: str, epoch: int) -> None:
        super().__init__(f"{participant} has no PoC commit on chain for epoch {epoch}")


class ProofsUnavailable(PocServiceError):
    status = 404


@dataclass(frozen=True)
class HostVerdict:
    """What this validator concluded about one host (and sent, when `sent`)."""

    epoch: int
    participant: str
    checked: int
    failed: int
    fraud: bool
    reason: str = ""


class _ProofFailure(Exception):
    pass


class _EpochNonces:
    """One epoch's NonceStore, used from trio one call at a time (it is not thread-safe)."""

    def __init__(self, path: Path, epoch: int) -> None:
        self.store = NonceStore(path, epoch)
        self.lock = trio.Lock()

    async def call(self, fn, *args):  # type: ignore[no-untyped-def]
        async with self.lock:
            return await trio.to_thread.run_sync(fn, *args)


class PocOrchestrator:
    def __init__(self, account: str, public_key: bytes, sender: TxSender, home: Path | str,
                 rpc: RpcClient, broker: Broker, *, callbacks_url: str,
                 http: httpx.AsyncClient | None = None, commit_every_blocks: int = 3,
                 proof_timeout_s: float = 30.0, proof_attempts: int = 2) -> None:
        """`public_key`: the account's compressed secp256k1 key (the PoC inputs are keyed by
        it; validators read it from the chain). `callbacks_url`: the base URL of the server
        that mounts `callbacks_blueprint` (reachable from the ML nodes)."""
        if len(public_key) != 33:
            raise ValueError("public_key must be a 33-byte compressed secp256k1 key")
        self.account = account
        self.public_key = public_key
        self.sender = sender
        self.rpc = rpc
        self.broker = broker
        self.callback_url = callbacks_url.rstrip("/") + CALLBACK_PREFIX
        self.commit_every_blocks = commit_every_blocks
        self.proof_timeout_s = proof_timeout_s
        self.proof_attempts = proof_attempts
        self.dir = Path(home) / "poc"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.seeds = SeedStore(self.dir / "seeds")
        self._http = http
        self._nursery: trio.Nursery | None = None
        self._nonces: dict[int, _EpochNonces] = {}
        self._sessions: dict[int, PocSession] = {}
        self._stages: dict[int, ChainStages] = {}
        self._chain_params: PocChainParamsView | None = None
        self._members: dict[int, list[MemberView]] = {}
        self._commit_sent: dict[int, tuple[int, int]] = {}   # epoch -> (count, height)
        self._final_commits: dict[int, CommitView] = {}
        self._validating: set[int] = set()
        self.verdicts: dict[tuple[int, str], HostVerdict] = {}
        self.height = 0
        self._progress = trio.Event()

    # -- the service ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[PocOrchestrator] =
                  trio.TASK_STATUS_IGNORED) -> None:
        """Follow the chain block by block until cancelled."""
        own = self._http is None
        http = self._http or httpx.AsyncClient(timeout=None)
        try:
            async with trio.open_nursery() as nursery:
                self._http, self._nursery = http, nursery
                task_status.started(self)
                await self._follow()
        finally:
            self._nursery = None
            for nonces in self._nonces.values():
                nonces.store.close()
            self._nonces.clear()
            if own:
                with trio.CancelScope(shield=True):
                    await http.aclose()
                self._http = None

    async def _follow(self) -> None:
        delay = 0.05
        while True:
            try:
                async with self.rpc.events(types=HEIGHTS_ONLY) as frames:
                    async for frame in frames:
                        delay = 0.05
                        await self.on_block(frame.height)
            except (RpcError, httpx.HTTPError, OSError, msgspec.DecodeError) as e:
                log.warning("PoC orchestrator: block stream ended (%s)", e)
            # Pacing a reconnect, not waiting for a state.
            await trio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def on_block(self, height: int) -> None:
        """Everything due at `height` (module docstring). Chain or network failures are
        logged and retried at the next block."""
        try:
            await self._on_block(height)
        except (RpcError, httpx.HTTPError, OSError, msgspec.DecodeError) as e:
            log.warning("PoC orchestrator at height %d: %s; retrying next block", height, e)
        self.height = max(self.height, height)
        self._progress.set()
        self._progress = trio.Event()

    async def wait_height(self, height: int) -> None:
        """Return once the block at `height` (or later) has been handled."""
        while self.height < height:
            await self._progress.wait()

    async def _on_block(self, height: int) -> None:
        info = await self.rpc.query("epochs/current", as_type=EpochInfoView,
                                    at_height=str(height))
        stage = info.stage or "inference"
        me = await self._member(info.effective_epoch)
        kept = frozenset(n.node_id for n in me.ml_nodes if n.poc_slot) if me else frozenset()
        models = {n.node_id: n.model for n in me.ml_nodes if n.model} if me else {}
        running = info.upcoming_epoch if stage in POC_STAGES else None
        session = None
        if running is not None:
            self._stages[running] = info.poc
            session = await self._session(running, info.poc)
            if stage in ("sprint", "commit_exchange"):
                self.ensure_seed(running)
                await self._maybe_commit(running, height, info.poc)
            elif (stage == "poc_validation" and running not in self._validating
                  and me is not None and me.weight > 0 and self._nursery is not None):
                self._validating.add(running)
                self._nursery.start_soon(self._validate_in_background, running)
        self.broker.reconcile(StageInfo(
            height=height, stage=stage,  # type: ignore[arg-type]
            epoch=running if running is not None else info.effective_epoch,
            kept_nodes=kept, node_models=models, poc=session))

    async def _member(self, epoch: int) -> MemberView | None:
        members = self._members.get(epoch)
        if members is None:
            try:
                group = await self.rpc.query("epochs/group", as_type=GroupView,
                                             epoch=str(epoch))
            except RpcError as e:
                if e.status != 404 and e.code != "query_failed":
                    raise
                return None
            members = self._members[epoch] = group.members
        return next((m for m in members if m.address == self.account), None)

    async def _session(self, epoch: int, stages: ChainStages) -> PocSession:
        session = self._sessions.get(epoch)
        if session is None:
            block = await self.rpc.block(stages.poc_start)
            if block is None:
                raise RpcError(404, "no_block", f"block {stages.poc_start} is not available")
            params = await self.rpc.query("poc/function", as_type=PocParams)
            chain = await self._poc_chain_params()
            session = PocSession(
                epoch=epoch, block_hash=block.hash, block_height=stages.poc_start,
                public_key=self.public_key.hex(), params=params, callback_url=self.callback_url,
                fraud_threshold=chain.fraud_threshold_ppb / 1e9,
                mismatch_rate=chain.mismatch_rate_ppb / 1e9)
            self._sessions[epoch] = session
            log.info("PoC of epoch %d: block %d hash %s", epoch, stages.poc_start, block.hash)
        return session

    async def _poc_chain_params(self) -> PocChainParamsView:
        if self._chain_params is None:
            self._chain_params = await self.rpc.query("params/poc", as_type=PocChainParamsView)
        return self._chain_params

    def _epoch_nonces(self, epoch: int) -> _EpochNonces:
        nonces = self._nonces.get(epoch)
        if nonces is None:
            nonces = self._nonces[epoch] = _EpochNonces(self.dir / "nonces.db", epoch)
        return nonces

    # -- seeds ----------------------------------------------------------------------------------

    def ensure_seed(self, epoch: int) -> SeedRecord:
        """The epoch's seed, drawn, persisted and committed on chain once (a crash between the
        outbox and the record commits the same seed again, which the chain takes as a
        replacement by the same commitment)."""
        record = self.seeds.get_or_create(epoch, self.account)
        if record.message_id is None:
            message_id = self.sender.submit(MsgSubmitSeed(
                participant=self.account, epoch=epoch, commitment=record.commitment))
            record = self.seeds.mark_submitted(epoch, message_id)
            log.info("epoch %d: seed committed (outbox message %d)", epoch, message_id)
        return record

    # -- generation and commits -----------------------------------------------------------------

    async def accept_batch(self, batch: ProofBatch) -> BatchMerge:
        """One ML-node callback: the batch's nonces into its epoch's store, durably."""
        session = next((s for s in self._sessions.values()
                        if s.block_height == batch.block_height), None)
        if session is None:
            if any(s.block_height > batch.block_height for s in self._sessions.values()):
                raise StaleBatch(f"batch of an old PoC (block {batch.block_height})")
            raise NoSession(batch.block_height)
        if batch.block_hash != session.block_hash or batch.public_key != session.public_key:
            raise StaleBatch(f"batch for block hash {batch.block_hash} and key "
                             f"{batch.public_key}, not this host's PoC of epoch "
                             f"{session.epoch}")
        try:
            merge = await self._epoch_nonces(session.epoch).call(
                self._epoch_nonces(session.epoch).store.add_batch, batch)
        except ForeignBatch as e:
            raise StaleBatch(str(e)) from None
        log.debug("epoch %d: %s from node %d", session.epoch, merge, batch.node_id)
        return merge

    async def _maybe_commit(self, epoch: int, height: int, stages: ChainStages) -> None:
        # A tx sent after `height` lands at height + 1 at the earliest; it must land by C.
        if not stages.poc_start <= height < stages.commit_deadline:
            return
        nonces = self._epoch_nonces(epoch)
        count = await nonces.call(nonces.store.count)
        last = self._commit_sent.get(epoch)
        if count == 0 or (last is not None and last[0] == count):
            return
        last_chance = height == stages.commit_deadline - 1
        if last is not None and height - last[1] < self.commit_every_blocks and not last_chance:
            return
        try:
            snap: Snapshot = await nonces.call(nonces.store.snapshot)
        except NothingToCommit:
            return
        self.sender.submit(MsgPocCommit(participant=self.account, epoch=epoch,
                                        count=snap.count, root=snap.root))
        self._commit_sent[epoch] = (snap.count, height)
        log.info("epoch %d: PoC commit of %d nonces at height %d", epoch, snap.count, height)

    # -- serving proofs -------------------------------------------------------------------------

    async def proofs(self, request: PocProofRequest) -> PocProofResponse:
        """The answer of `POST /v1/poc/proofs`: leaves and proofs of the committed list.
        Raises NoCommitment, ProofsUnavailable, PositionOutOfRange (a 400)."""
        commit = await self._own_commit(request.epoch)
        nonces = self._epoch_nonces(request.epoch)

        def answer() -> PocProofResponse:
            try:
                frozen = nonces.store.committed(commit.count, commit.root)
            except NonceStoreError as e:
                raise ProofsUnavailable(str(e)) from None
            return frozen.answer(self.account, request.epoch, list(request.positions))

        return await nonces.call(answer)

    async def _own_commit(self, epoch: int) -> CommitView:
        final = self._final_commits.get(epoch)
        if final is not None:
            return final
        commits = await self.rpc.query("poc/commits", as_type=list[CommitView],
                                       epoch=str(epoch))
        mine = next((c for c in commits if c.participant == self.account), None)
        if mine is None:
            raise NoCommitment(self.account, epoch)
        stages = self._stages.get(epoch)
        if stages is not None and self.height > stages.commit_deadline:
            self._final_commits[epoch] = mine   # the commit window is closed: final
        return mine

    # -- validating the others ------------------------------------------------------------------

    async def _validate_in_background(self, epoch: int) -> None:
        try:
            await self.validate_epoch(epoch)
        except (RpcError, httpx.HTTPError, OSError, msgspec.DecodeError) as e:
            log.warning("epoch %d: PoC validation interrupted (%s); retrying next block",
                        epoch, e)
            self._validating.discard(epoch)

    async def validate_epoch(self, epoch: int) -> list[HostVerdict]:
        """Judge every other host's commit of `epoch` and send the verdicts."""
        stages = self._stages[epoch]
        session = self._sessions[epoch]
        commits = await self.rpc.query("poc/commits", as_type=list[CommitView],
                                       epoch=str(epoch))
        sealed = await self.rpc.block(stages.commit_deadline)
        if sealed is None:
            raise RpcError(404, "no_block", f"block {stages.commit_deadline} is not available")
        chain = await self._poc_chain_params()
        verdicts: list[HostVerdict] = []

        async def judge(commit: CommitView) -> None:
            v = await self._judge(epoch, commit, bytes.fromhex(sealed.hash), session, chain)
            if v is not None:
                verdicts.append(v)

        async with trio.open_nursery() as nursery:
            for commit in commits:
                if commit.participant != self.account:
                    nursery.start_soon(judge, commit)
        return verdicts

    async def _judge(self, epoch: int, commit: CommitView, sealed_hash: bytes,
                     session: PocSession, chain: PocChainParamsView) -> HostVerdict | None:
        host = commit.participant
        positions = sample_positions(self.public_key, sealed_hash, host, commit.count,
                                     chain.validation_sample_size)
        checked = len(positions)
        reason = ""
        try:
            leaves = await self._fetch_proofs(epoch, commit, positions)
            failed = await self._recompute(host, leaves, session)
        except _ProofFailure as e:
            failed, reason = checked, str(e)
            log.warning("epoch %d: proofs of %s fail: %s", epoch, host, e)
        except (NoMlNode, MlNodeError, RpcError, httpx.HTTPError) as e:
            log.error("epoch %d: cannot recompute the nonces of %s (%s); not voting", epoch,
                      host, e)
            return None
        fraud = verdict(checked, failed, chain.mismatch_rate_ppb / 1e9,
                        chain.fraud_threshold_ppb / 1e9)
        result = HostVerdict(epoch, host, checked, failed, fraud, reason)
        self.verdicts[(epoch, host)] = result
        self.sender.submit(MsgPocValidation(validator=self.account, participant=host,
                                            epoch=epoch, fraud=fraud, checked=checked,
                                            failed=failed))
        log.info("epoch %d: %s: %d of %d sampled nonces failed; fraud=%s", epoch, host, failed,
                 checked, fraud)
        return result

    async def _fetch_proofs(self, epoch: int, commit: CommitView,
                            positions: Sequence[int]) -> list[VerifiedLeaf]:
        try:
            host = await self.rpc.query("participants/participant", as_type=ParticipantView,
                                        address=commit.participant)
        except RpcError as e:
            raise _ProofFailure(f"no participant record: {e}") from None
        request = PocProofRequest(epoch=epoch, positions=list(positions))
        url = host.inference_url.rstrip("/") + PROOFS_PATH
        assert self._http is not None
        error = "no attempt"
        for _ in range(self.proof_attempts):
            with trio.move_on_after(self.proof_timeout_s):
                try:
                    r = await self._http.post(url, content=msgspec.json.encode(request),
                                              headers={"content-type": "application/json"})
                except httpx.HTTPError as e:
                    error = f"POST {url}: {type(e).__name__}: {e}"
                    continue
                if r.status_code != 200:
                    error = f"POST {url}: HTTP {r.status_code}: {r.text[:200]}"
                    continue
                try:
                    response = msgspec.json.decode(r.content, type=PocProofResponse)
                    return verify_response(commit.participant, epoch, commit.count,
                                           commit.root, request, response)
                except (msgspec.DecodeError, PocProofError) as e:
                    raise _ProofFailure(f"{url}: {e}") from None
            error = f"POST {url}: no answer within {self.proof_timeout_s} s"
        raise _ProofFailure(error)

    async def _recompute(self, host: str, leaves: list[VerifiedLeaf],
                         session: PocSession) -> int:
        """How many proven leaves fail: a recomputed distance above r_target + tolerance, or
        a claimed distance that is not below r_target."""
        account = await self.rpc.query("auth/account", as_type=AccountView, address=host)
        if account.pubkey is None:
            raise _ProofFailure(f"{host} has no public key on chain to recompute with")
        batch = ProofBatch(public_key=account.pubkey.hex(), block_hash=session.block_hash,
                           block_height=session.block_height,
                           nonces=[leaf.nonce for leaf in leaves],
                           dist=[leaf.distance for leaf in leaves])
        result: ValidatedBatch = await self.broker.validate_poc(batch)
        params = session.params
        limit = params.r_target + params.dist_tolerance
        return sum(1 for recomputed, claimed in zip(result.dist, result.received_dist,
                                                    strict=True)
                   if not recomputed <= limit or not claimed < params.r_target)
