"""`GonkaApp`: the state machine behind the ABCI++-shaped boundary (chain.app.abci.Application).

It owns the state database (chain.store.state) and three versions of state:
  * committed state, in SQLite: what queries read;
  * the block overlay, filled by `finalize_block` and written by `commit` in one SQLite
    transaction together with the new height and app hash;
  * the check overlay, where `check_tx` dry-runs txs on top of committed state plus what the
    mempool already admitted; it is thrown away at every commit (the mempool then rechecks).

Tx rules (PROTOCOL.md): canonical encoding, right chain id, timeout_height not passed and at most
`max_tx_timeout_blocks` ahead, hash not seen before (the hash is remembered until the timeout),
every message signed by the tx signer, valid signature; then the messages run in order, all or
nothing. A tx that fails while running is still recorded as seen; its writes are dropped.

A block whose header carries an app hash other than ours means this node diverged: finalize_block
raises AppHashMismatch (naming the height) and the node must stop. Methods are serialised by a
lock. Nothing here reads the clock or the network: block time comes in the header.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import msgspec

import native
from chain.app import abci
from chain.app.abci import (
    AppInfo,
    CheckTxResult,
    FinalizeBlockResult,
    InitChainResult,
    QueryResult,
    TxResult,
    ValidatorUpdate,
)
from chain.app.auth.state import mark_seen, record_signer, seen_timeout
from chain.app.bank.state import set_genesis_balance
from chain.app.context import Context, Handler, Module, Query
from chain.app.errors import (
    AppHashMismatch,
    BadQuery,
    DuplicateTx,
    QueryError,
    SignatureInvalid,
    TimeoutPassed,
    TimeoutTooFar,
    TxError,
    UnknownMessage,
    UnknownQuery,
    WrongChainId,
)
from chain.app.evidence.punish import punish_double_signs
from chain.app.modules import MODULES
from chain.app.params.state import get_consensus_params, init_params
from chain.app.validators.state import Validator, store_validator
from chain.store.kv import ZERO_HASH, KVReader, Overlay, next_app_hash
from chain.store.state import CommittedInfo, StateStore
from chain.types.block import Block, InvalidBlock
from chain.types.codec import DecodeError, to_json
from chain.types.genesis import ConsensusParams, Genesis
from chain.types.msgs import msg_tag
from chain.types.tx import Tx, WrongSigner, decode_tx, sign_bytes, tx_hash


class NotInitialised(RuntimeError):
    def __init__(self) -> None:
        super().__init__("the application has no state yet: call init_chain first")


class AppInfoView(msgspec.Struct, frozen=True):
    """What `app/info` answers."""

    chain_id: str
    last_height: int
    last_app_hash: str
    last_time_ns: int


class _Pending(msgspec.Struct):
    height: int
    time_ns: int
    overlay: Overlay


class GonkaApp:
    """The application; `GonkaApp(path)` opens (or creates) the state database at `path`."""

    def __init__(self, db_path: Path | str, *, modules: Sequence[Module] = MODULES) -> None:
        self._store = StateStore(db_path)
        self._lock = threading.RLock()
        self._modules = tuple(modules)
        self._handlers: dict[type, Handler] = {}
        self._queries: dict[str, Query] = {}
        for module in self._modules:
            for msg_type, handler in module.handlers.items():
                if msg_type in self._handlers:
                    raise ValueError(f"two modules handle {msg_type.__name__}")
                self._handlers[msg_type] = handler
            for name, query in module.queries.items():
                self._queries[f"{module.name}/{name}"] = query
        self._pending: _Pending | None = None
        self._check = Overlay(self._store)
        # Consensus params are fixed at genesis (gov cannot change them), so read them once.
        self._consensus: ConsensusParams | None = None

    @classmethod
    def in_home(cls, home: Path | str) -> GonkaApp:
        """The app of a node home folder: state in <home>/data/state.db."""
        return cls(Path(home) / "data" / "state.db")

    def close(self) -> None:
        with self._lock:
            self._store.close()

    def __enter__(self) -> GonkaApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the Application protocol ----------------------------------------------------------

    def info(self) -> AppInfo:
        with self._lock:
            committed = self._store.info()
            return AppInfo(last_height=committed.height, last_app_hash=committed.app_hash)

    def init_chain(self, genesis: Genesis) -> InitChainResult:
        """Write the genesis state (params, validators, accounts) as height 0."""
        with self._lock:
            genesis.validate()
            if self._store.info().app_hash:
                raise RuntimeError(f"{self._store.path} already holds a chain; init_chain "
                                   "runs once, on an empty state")
            overlay = Overlay(self._store)
            ctx = self._context(overlay, genesis.chain_id, 0, genesis.genesis_time_ns)
            init_params(overlay, genesis.app_params, genesis.consensus)
            for v in genesis.validators:
                store_validator(overlay, Validator(pubkey=v.pubkey, power=v.power,
                                                   operator=v.operator, name=v.name))
            for account in genesis.accounts:
                set_genesis_balance(ctx, account.address, account.balance)
            for module in self._modules:
                if module.init_genesis is not None:
                    module.init_genesis(ctx, genesis)
            app_hash = next_app_hash(ZERO_HASH, overlay.writes)
            self._store.commit(overlay.writes, chain_id=genesis.chain_id, height=0,
                               app_hash=app_hash, time_ns=genesis.genesis_time_ns)
            self._check = Overlay(self._store)
            self._consensus = None
            validators = tuple(ValidatorUpdate(pubkey=v.pubkey, power=v.power)
                               for v in genesis.validators)
            return InitChainResult(app_hash=app_hash, validators=validators)

    def check_tx(self, raw: bytes, *, recheck: bool = False,
                 signature_verified: bool = False) -> CheckTxResult:
        """Admit and dry-run `raw` on the check overlay (committed state plus the txs admitted
        since the last commit). A recheck after a commit runs the very same checks: the overlay
        was reset by that commit."""
        with self._lock:
            committed = self._store.info()
            if not committed.app_hash:
                return CheckTxResult(code=abci.ERR_INTERNAL, log=str(NotInitialised()))
            try:
                tx = decode_tx(raw)
            except DecodeError as e:
                return CheckTxResult(code=abci.ERR_DECODE, log=str(e), codespace="tx")
            height = committed.height + 1
            result = self._check_one(self._check, raw, tx, committed.chain_id, height,
                                     committed.time_ns, signature_verified or None)
            return CheckTxResult(code=result.code, log=result.log, codespace=result.codespace,
                                 sender=tx.signer, timeout_height=tx.body.timeout_height)

    def prepare_proposal(self, txs: Sequence[bytes], *, height: int, time_ns: int,
                         max_bytes: int, max_txs: int) -> list[bytes]:
        """Keep the mempool's order; drop txs that would fail now, and what does not fit."""
        with self._lock:
            committed = self._require_state()
            if height != committed.height + 1:
                raise ValueError(f"proposal for height {height}, the app is at {committed.height}")
            overlay = Overlay(self._store)
            self._begin_block(self._context(overlay, committed.chain_id, height, time_ns))
            decoded = _decode_all(txs)
            valid = _verify(decoded)
            chosen: list[bytes] = []
            size = 0
            for raw, tx, ok in zip(txs, decoded, valid, strict=True):
                if len(chosen) >= max_txs:
                    break
                if tx is None or size + len(raw) > max_bytes:
                    continue
                result = self._check_one(overlay, raw, tx, committed.chain_id, height, time_ns,
                                         ok)
                if result.code == abci.OK:
                    chosen.append(raw)
                    size += len(raw)
            return chosen

    def process_proposal(self, block: Block) -> bool:
        """Accept unless the block is for another state, or carries a tx that does not decode
        or whose signature does not verify (all checked in one batch)."""
        with self._lock:
            committed = self._require_state()
            header = block.header
            if (header.height != committed.height + 1 or header.chain_id != committed.chain_id
                    or header.app_hash != committed.app_hash):
                return False
            try:
                block.validate_basic()
            except InvalidBlock:
                return False
            if len(block.txs) > self._consensus_params().block_max_txs:
                return False
            decoded = _decode_all(block.txs)
            if any(tx is None for tx in decoded):
                return False
            return all(_verify(decoded))

    def finalize_block(self, block: Block) -> FinalizeBlockResult:
        with self._lock:
            committed = self._require_state()
            header = block.header
            if header.height != committed.height + 1:
                raise ValueError(f"finalize_block of height {header.height}, but the app's last "
                                 f"committed height is {committed.height}")
            if header.chain_id != committed.chain_id:
                raise ValueError(f"block of chain {header.chain_id!r} given to chain "
                                 f"{committed.chain_id!r}")
            if header.app_hash != committed.app_hash:
                raise AppHashMismatch(committed.height, committed.app_hash, header.app_hash)
            overlay = Overlay(self._store)
            ctx = self._context(overlay, committed.chain_id, header.height, header.time_ns)
            self._begin_block(ctx)
            # Evidence consensus validated is punished before any tx runs (Cosmos: BeginBlock).
            punish_double_signs(ctx, block.evidence)
            decoded = _decode_all(block.txs)
            valid = _verify(decoded)
            results = []
            for raw, tx, ok in zip(block.txs, decoded, valid, strict=True):
                if tx is None:
                    results.append(TxResult(code=abci.ERR_DECODE, codespace="tx",
                                            log="tx does not decode"))
                    continue
                results.append(self._deliver(ctx, raw, tx, ok))
            for module in self._modules:
                if module.end_block is not None:
                    module.end_block(ctx)
            self._pending = _Pending(height=header.height, time_ns=header.time_ns,
                                     overlay=overlay)
            return FinalizeBlockResult(tx_results=tuple(results), events=tuple(ctx.events),
                                       validator_updates=_last_per_key(ctx.validator_updates))

    def commit(self) -> bytes:
        with self._lock:
            pending = self._pending
            if pending is None:
                raise RuntimeError("commit without a finalized block")
            committed = self._store.info()
            app_hash = next_app_hash(committed.app_hash, pending.overlay.writes)
            self._store.commit(pending.overlay.writes, chain_id=committed.chain_id,
                               height=pending.height, app_hash=app_hash, time_ns=pending.time_ns)
            self._pending = None
            self._check = Overlay(self._store)
            return app_hash

    def query(self, path: str, params: dict[str, str], *,
              height: int | None = None) -> QueryResult:
        with self._lock:
            committed = self._store.info()
            try:
                if height is not None and height != committed.height:
                    raise BadQuery(f"only the latest height ({committed.height}) can be queried")
                value = self._answer(path, params, self._store)
            except QueryError as e:
                return QueryResult(code=e.code, log=e.log, height=committed.height)
            return QueryResult(value=to_json(value), height=committed.height)

    # -- internals ---------------------------------------------------------------------------

    def _require_state(self) -> CommittedInfo:
        committed = self._store.info()
        if not committed.app_hash:
            raise NotInitialised()
        return committed

    def _consensus_params(self) -> ConsensusParams:
        if self._consensus is None:
            self._consensus = get_consensus_params(self._store)
        return self._consensus

    def _answer(self, path: str, params: Mapping[str, str], store: KVReader) -> object:
        if path == "app/info":
            committed = self._store.info()
            return AppInfoView(chain_id=committed.chain_id, last_height=committed.height,
                               last_app_hash=committed.app_hash.hex(),
                               last_time_ns=committed.time_ns)
        query = self._queries.get(path)
        if query is None:
            known = ", ".join(sorted([*self._queries, "app/info"]))
            raise UnknownQuery(f"unknown query path {path!r}; known: {known}")
        return query(store, params)

    def _context(self, overlay: Overlay, chain_id: str, height: int, time_ns: int) -> Context:
        return Context(store=overlay, chain_id=chain_id, height=height, time_ns=time_ns,
                       dispatch=self._dispatch)

    def _begin_block(self, ctx: Context) -> None:
        for module in self._modules:
            if module.begin_block is not None:
                module.begin_block(ctx)

    def _dispatch(self, ctx: Context, msg: object) -> None:
        tag = msg_tag(type(msg))  # type: ignore[arg-type]
        handler = self._handlers.get(type(msg))
        if handler is None:
            raise UnknownMessage(tag)
        ctx.emit("message", action=tag, module=tag.split("/", 1)[0],
                 sender=",".join(msg.signers))  # type: ignore[attr-defined]
        handler(ctx, msg)

    def _admit(self, store: KVReader, raw: bytes, tx: Tx, chain_id: str, height: int,
               signature_ok: bool | None) -> None:
        """The checks before any message runs; `signature_ok` None means "verify it here"."""
        body = tx.body
        if body.chain_id != chain_id:
            raise WrongChainId(body.chain_id, chain_id)
        try:
            tx.check_signers()
        except WrongSigner as e:
            raise SignatureInvalid(e.reason) from None
        if signature_ok is None:
            signature_ok = tx.verify_signature()
        if not signature_ok:
            raise SignatureInvalid(f"signature does not verify for {tx.signer}")
        if body.timeout_height < height:
            raise TimeoutPassed(body.timeout_height, height)
        max_blocks = self._consensus_params().max_tx_timeout_blocks
        if body.timeout_height > height + max_blocks:
            raise TimeoutTooFar(body.timeout_height, height, max_blocks)
        hash_ = tx_hash(raw)
        seen = seen_timeout(store, hash_)
        if seen is not None:
            raise DuplicateTx(hash_, seen)

    def _run(self, ctx: Context, tx: Tx) -> tuple[TxResult, Context | None]:
        """Run the messages on a child of `ctx`: the result, and the child if it succeeded."""
        child = ctx.child()
        index = 0
        try:
            record_signer(child, tx.signer, tx.pubkey)
            for index in range(len(tx.body.messages)):
                child.dispatch(child, tx.body.messages[index])
        except TxError as e:
            tag = msg_tag(type(tx.body.messages[index]))
            return TxResult(code=e.code, codespace=e.codespace,
                            log=f"message {index} ({tag}): {e.log}"), None
        except Exception as e:  # noqa: BLE001 - a handler bug must not stop the chain
            # The log names only the type: a message could hold addresses of objects, and every
            # node must produce the same result.
            return TxResult(code=abci.ERR_INTERNAL, codespace="tx",
                            log=f"internal error in message {index}: {type(e).__name__}"), None
        return TxResult(events=tuple(child.events)), child

    def _check_one(self, overlay: Overlay, raw: bytes, tx: Tx, chain_id: str, height: int,
                   time_ns: int, signature_ok: bool | None) -> TxResult:
        """Admit and dry-run `tx` on `overlay`, keeping its effects there if it succeeds."""
        try:
            self._admit(overlay, raw, tx, chain_id, height, signature_ok)
        except TxError as e:
            return TxResult(code=e.code, codespace=e.codespace, log=e.log)
        ctx = self._context(overlay, chain_id, height, time_ns)
        result, child = self._run(ctx, tx)
        if child is not None:
            child.store.write_into(overlay)
            mark_seen(overlay, tx_hash(raw), tx.body.timeout_height)
        return result

    def _deliver(self, ctx: Context, raw: bytes, tx: Tx, signature_ok: bool) -> TxResult:
        try:
            self._admit(ctx.store, raw, tx, ctx.chain_id, ctx.height, signature_ok)
        except TxError as e:
            return TxResult(code=e.code, codespace=e.codespace, log=e.log)
        result, child = self._run(ctx, tx)
        if child is not None:
            child.store.write_into(ctx.store)
            ctx.validator_updates.extend(child.validator_updates)
        # Seen even when it failed: the same bytes must not be executed twice.
        mark_seen(ctx.store, tx_hash(raw), tx.body.timeout_height)
        return result


def _decode_all(raws: Iterable[bytes]) -> list[Tx | None]:
    out: list[Tx | None] = []
    for raw in raws:
        try:
            out.append(decode_tx(raw))
        except DecodeError:
            out.append(None)
    return out


def _verify(txs: Sequence[Tx | None]) -> list[bool]:
    """Signature validity of each tx (False for None and for wrong signers), in one native
    batch call for those not checked lately."""
    indices = []
    for i, tx in enumerate(txs):
        if tx is None:
            continue
        try:
            tx.check_signers()
        except WrongSigner:
            continue
        indices.append(i)
    ok = [False] * len(txs)
    if indices:
        verdicts = native.verify_many_secp256k1(
            [txs[i].pubkey for i in indices],  # type: ignore[union-attr]
            [sign_bytes(txs[i].body) for i in indices],  # type: ignore[union-attr]
            [txs[i].signature for i in indices],  # type: ignore[union-attr]
        )
        for i, verdict in zip(indices, verdicts, strict=True):
            ok[i] = bool(verdict)
    return ok


def _last_per_key(updates: Iterable[ValidatorUpdate]) -> tuple[ValidatorUpdate, ...]:
    """One update per validator (the last one wins), sorted by public key."""
    last = {u.pubkey: u for u in updates}
    return tuple(last[k] for k in sorted(last))
