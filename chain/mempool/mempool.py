"""The mempool: which txs wait for a block, in arrival order (DESIGN.md section 4).

Admission (`add_batch`) runs the cheap checks first, so that a flood of junk costs dictionary
lookups rather than elliptic-curve work: size, duplicate (in this batch, in the pool, recently
committed, or remembered as badly signed), decode, timeout height, signers, room in the pool and
in the sender's quota. Only then are the remaining signatures verified, all in one
`native.verify_batch_secp256k1` call, and each survivor is offered to the application's
`check_tx(signature_verified=True)`, in arrival order, with the pool and quota bounds checked
again *before* the application sees it (an admitted check_tx changes the application's check
state, so a tx the pool then refused would leave a phantom there until the next block).

After each committed block, `update` removes the block's txs, remembers their hashes until their
timeout height, drops txs whose timeout height has been reached, and re-checks the rest against
the application, whose check state was reset on commit.

Gossip: every admitted tx gets a sequence number; a peer's gossip loop keeps a cursor and asks
`txs_after(cursor, exclude_peer=peer)`, which skips the txs that peer sent us.

This is a pure core: no I/O, no clock, no randomness, no threads. The trio shell that owns it
feeds it bytes and blocks and carries its answers to peers and clients. It must never reorder
txs other than by arrival, and never call the application for a tx it has already refused.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import msgspec

import native
from chain.app.abci import (
    ERR_DECODE,
    ERR_DUPLICATE,
    ERR_INTERNAL,
    ERR_MEMPOOL_FULL,
    ERR_SENDER_QUOTA,
    ERR_SIGNATURE,
    ERR_TIMEOUT,
    ERR_TOO_LARGE,
    OK,
    Application,
    CheckTxResult,
)
from chain.mempool.replay import CommittedHashes, RejectedHashes
from chain.types.codec import MAX_TX_BYTES, DecodeError
from chain.types.tx import InvalidTx, Tx, decode_tx, sign_bytes, tx_hash

# Who sent us a tx: whatever the p2p layer names peers with (a node id). None means a local
# client (RPC), which gossip never skips.
PeerId = Hashable


class AddResult(msgspec.Struct, frozen=True):
    """The verdict on one tx of a batch. `code` OK means it was newly admitted: gossip it."""

    hash: bytes
    code: int = OK
    log: str = ""
    codespace: str = ""
    # The signer, when the tx decoded far enough to know it.
    sender: str = ""

    @property
    def admitted(self) -> bool:
        return self.code == OK


class UpdateResult(msgspec.Struct, frozen=True):
    """What `update` removed from the pool, by reason, each in arrival order."""

    # Pool txs the block included.
    committed: tuple[bytes, ...] = ()
    # Pool txs whose timeout height the block reached.
    expired: tuple[bytes, ...] = ()
    # Pool txs the application refused on re-check, with its verdict.
    invalid: tuple[tuple[bytes, CheckTxResult], ...] = ()


@dataclass(slots=True)
class _Entry:
    seq: int
    hash: bytes
    raw: bytes
    sender: str
    timeout_height: int
    # Peers that sent us this tx: gossip does not send it back to them.
    peers: set[PeerId] = field(default_factory=set)


@dataclass(slots=True)
class _Candidate:
    index: int
    hash: bytes
    raw: bytes
    tx: Tx


class Mempool:
    """Txs waiting for a block, bounded in count, bytes and txs per sender."""

    def __init__(
        self,
        app: Application,
        *,
        max_txs: int = 5_000,
        max_bytes: int = 64 << 20,
        max_per_sender: int = 100,
        max_tx_bytes: int = MAX_TX_BYTES,
        height: int = 0,
        recheck: bool = True,
        committed_cache_size: int = 100_000,
        rejected_cache_size: int = 10_000,
    ) -> None:
        """`height` is the last committed height (0 before the first block)."""
        for name, value in (("max_txs", max_txs), ("max_bytes", max_bytes),
                            ("max_per_sender", max_per_sender), ("max_tx_bytes", max_tx_bytes)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if height < 0:
            raise ValueError(f"height must be >= 0, got {height}")
        self._app = app
        self._max_txs = max_txs
        self._max_bytes = max_bytes
        self._max_per_sender = max_per_sender
        self._max_tx_bytes = max_tx_bytes
        self._height = height
        self._recheck = recheck
        self._committed = CommittedHashes(committed_cache_size)
        self._rejected = RejectedHashes(rejected_cache_size)
        # Insertion order is arrival order; removals keep the order of the rest.
        self._entries: dict[bytes, _Entry] = {}
        self._bytes = 0
        self._per_sender: dict[str, int] = {}
        self._last_seq = 0

    # -- inspection ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Sum of the raw sizes of the txs in the pool."""
        return self._bytes

    @property
    def height(self) -> int:
        """The last committed height the pool was updated to."""
        return self._height

    @property
    def last_seq(self) -> int:
        """Sequence number of the latest admitted tx (0 if none ever was): a gossip cursor."""
        return self._last_seq

    def contains(self, tx_hash_: bytes) -> bool:
        return tx_hash_ in self._entries

    def get(self, tx_hash_: bytes) -> bytes | None:
        """The raw tx with this hash, if it is waiting in the pool."""
        entry = self._entries.get(tx_hash_)
        return None if entry is None else entry.raw

    def sender_count(self, sender: str) -> int:
        """How many txs of `sender` wait in the pool."""
        return self._per_sender.get(sender, 0)

    def __iter__(self) -> Iterator[bytes]:
        """The raw txs in arrival order."""
        return iter([e.raw for e in self._entries.values()])

    # -- admission -----------------------------------------------------------------------------

    def add_batch(self, raws: Sequence[bytes], source_peer: PeerId | None = None
                  ) -> list[AddResult]:
        """Check and admit `raws` in order; one result per input, in the same order.

        Results with code OK are the newly admitted txs (the ones to gossip). A tx already in
        the pool gets ERR_DUPLICATE, and `source_peer` is remembered as having it.
        """
        results: list[AddResult | None] = [None] * len(raws)
        candidates: list[_Candidate] = []
        in_batch: set[bytes] = set()
        for i, raw in enumerate(raws):
            raw = bytes(raw)
            h = tx_hash(raw)
            verdict, tx = self._precheck(raw, h, in_batch, source_peer)
            in_batch.add(h)
            if verdict is not None:
                results[i] = verdict
            else:
                assert tx is not None
                candidates.append(_Candidate(i, h, raw, tx))

        valid = self._verify_signatures(candidates)
        for cand, ok in zip(candidates, valid, strict=True):
            if ok:
                results[cand.index] = self._admit(cand, source_peer)
            else:
                reason = f"signature does not verify for {cand.tx.signer}"
                self._rejected.add(cand.hash, reason)
                results[cand.index] = AddResult(cand.hash, ERR_SIGNATURE, reason,
                                                sender=cand.tx.signer)
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _precheck(self, raw: bytes, h: bytes, in_batch: set[bytes], source_peer: PeerId | None
                  ) -> tuple[AddResult | None, Tx | None]:
        """Every check that costs no signature work; (verdict, None) or (None, decoded tx)."""
        if len(raw) > self._max_tx_bytes:
            return AddResult(h, ERR_TOO_LARGE,
                             f"tx is {len(raw)} bytes, the limit is {self._max_tx_bytes}"), None
        if h in in_batch:
            return AddResult(h, ERR_DUPLICATE, "tx appears twice in the same batch"), None
        entry = self._entries.get(h)
        if entry is not None:
            if source_peer is not None:
                entry.peers.add(source_peer)
            return AddResult(h, ERR_DUPLICATE, "tx is already in the mempool",
                             sender=entry.sender), None
        if h in self._committed:
            return AddResult(h, ERR_DUPLICATE, "tx was already committed"), None
        reason = self._rejected.get(h)
        if reason is not None:
            return AddResult(h, ERR_SIGNATURE, reason), None
        try:
            tx = decode_tx(raw)
        except DecodeError as e:
            return AddResult(h, ERR_DECODE, str(e)), None
        sender = tx.signer
        timeout = tx.body.timeout_height
        if timeout <= self._height:
            return AddResult(h, ERR_TIMEOUT,
                             f"timeout height {timeout} is not above the last committed height "
                             f"{self._height}", sender=sender), None
        try:
            tx.check_signers()
        except InvalidTx as e:
            self._rejected.add(h, str(e))
            return AddResult(h, ERR_SIGNATURE, str(e), sender=sender), None
        # Bounds as the pool stands now; re-checked with this batch's admissions in `_admit`.
        full = self._full_reason(len(raw))
        if full is not None:
            return AddResult(h, ERR_MEMPOOL_FULL, full, sender=sender), None
        if self.sender_count(sender) >= self._max_per_sender:
            return AddResult(h, ERR_SENDER_QUOTA, self._quota_reason(sender),
                             sender=sender), None
        return None, tx

    @staticmethod
    def _verify_signatures(candidates: list[_Candidate]) -> list[bool]:
        if not candidates:
            return []
        # One call for the whole batch: the native backend spreads it over cores, GIL released.
        return list(native.verify_batch_secp256k1(
            [c.tx.pubkey for c in candidates],
            [sign_bytes(c.tx.body) for c in candidates],
            [c.tx.signature for c in candidates],
        ))

    def _admit(self, cand: _Candidate, source_peer: PeerId | None) -> AddResult:
        signer = cand.tx.signer
        full = self._full_reason(len(cand.raw))
        if full is not None:
            return AddResult(cand.hash, ERR_MEMPOOL_FULL, full, sender=signer)
        if self.sender_count(signer) >= self._max_per_sender:
            return AddResult(cand.hash, ERR_SENDER_QUOTA, self._quota_reason(signer),
                             sender=signer)
        check = self._check(cand.raw, recheck=False)
        if check.code != OK:
            return AddResult(cand.hash, check.code, check.log, check.codespace,
                             check.sender or signer)
        sender = check.sender or signer
        if sender != signer and self.sender_count(sender) >= self._max_per_sender:
            # The application named another sender than the tx signer; its quota rules.
            return AddResult(cand.hash, ERR_SENDER_QUOTA, self._quota_reason(sender),
                             sender=sender)
        self._last_seq += 1
        entry = _Entry(self._last_seq, cand.hash, cand.raw, sender, cand.tx.body.timeout_height)
        if source_peer is not None:
            entry.peers.add(source_peer)
        self._entries[cand.hash] = entry
        self._bytes += len(cand.raw)
        self._per_sender[sender] = self._per_sender.get(sender, 0) + 1
        return AddResult(cand.hash, OK, check.log, check.codespace, sender)

    def _check(self, raw: bytes, *, recheck: bool) -> CheckTxResult:
        try:
            return self._app.check_tx(raw, recheck=recheck, signature_verified=True)
        except Exception as e:  # noqa: BLE001 - one tx that trips an app bug must not stop the node
            return CheckTxResult(code=ERR_INTERNAL,
                                 log=f"check_tx raised {type(e).__name__}: {e}")

    def _full_reason(self, size: int) -> str | None:
        if len(self._entries) >= self._max_txs:
            return f"mempool is full: {len(self._entries)} txs, the limit is {self._max_txs}"
        if self._bytes + size > self._max_bytes:
            return (f"mempool is full: {self._bytes} + {size} bytes exceeds the limit of "
                    f"{self._max_bytes} bytes")
        return None

    def _quota_reason(self, sender: str) -> str:
        return (f"sender {sender} already has {self.sender_count(sender)} txs in the mempool, "
                f"the limit is {self._max_per_sender}")

    # -- proposing and gossip ------------------------------------------------------------------

    def reap(self, max_bytes: int | None = None, max_txs: int | None = None) -> list[bytes]:
        """Txs for a proposal, in arrival order, within `max_bytes` total and `max_txs` count.

        A tx that does not fit in the bytes left is skipped, not a stop: one large tx must not
        hold back every smaller one behind it. The txs stay in the pool until `update`.
        """
        out: list[bytes] = []
        budget = max_bytes
        for entry in self._entries.values():
            if max_txs is not None and len(out) >= max_txs:
                break
            if budget is not None:
                if len(entry.raw) > budget:
                    continue
                budget -= len(entry.raw)
            out.append(entry.raw)
        return out

    def txs_after(self, cursor: int, *, exclude_peer: PeerId | None = None,
                  max_txs: int | None = None) -> tuple[list[bytes], int]:
        """Txs admitted after sequence number `cursor`, skipping those `exclude_peer` sent us.

        Returns (raw txs in arrival order, the cursor to pass next time). A peer's gossip loop
        starts at 0 (or `last_seq` to send only what arrives from now on).
        """
        out: list[bytes] = []
        next_cursor = cursor
        for entry in self._entries.values():
            if entry.seq <= cursor:
                continue
            if max_txs is not None and len(out) >= max_txs:
                break
            next_cursor = entry.seq
            if exclude_peer is None or exclude_peer not in entry.peers:
                out.append(entry.raw)
        return out, max(next_cursor, cursor)

    # -- after each block ----------------------------------------------------------------------

    def update(self, height: int, committed_raws: Iterable[bytes]) -> UpdateResult:
        """The block at `height` committed `committed_raws`: prune and re-check the pool.

        Call after the application's `commit`, in height order, before admitting new txs.
        """
        if height <= self._height:
            raise ValueError(f"update to height {height} after height {self._height}")
        self._height = height
        committed: list[bytes] = []
        for raw in committed_raws:
            h = tx_hash(raw)
            entry = self._entries.get(h)
            if entry is not None:
                timeout = entry.timeout_height
                self._remove(entry)
                committed.append(h)
            else:
                try:
                    timeout = decode_tx(raw).body.timeout_height
                except DecodeError:
                    continue  # a committed tx that does not decode was refused by the app
            if timeout > height:
                self._committed.add(h, timeout)
        self._committed.expire(height)

        expired: list[bytes] = []
        invalid: list[tuple[bytes, CheckTxResult]] = []
        for entry in list(self._entries.values()):
            if entry.timeout_height <= height:
                self._remove(entry)
                expired.append(entry.hash)
            elif self._recheck:
                check = self._check(entry.raw, recheck=True)
                if check.code != OK:
                    self._remove(entry)
                    invalid.append((entry.hash, check))
        return UpdateResult(tuple(committed), tuple(expired), tuple(invalid))

    def _remove(self, entry: _Entry) -> None:
        del self._entries[entry.hash]
        self._bytes -= len(entry.raw)
        left = self._per_sender[entry.sender] - 1
        if left:
            self._per_sender[entry.sender] = left
        else:
            del self._per_sender[entry.sender]
