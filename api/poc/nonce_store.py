"""A host's valid PoC nonces for one epoch: durable, sorted, committed and proven.

`NonceStore` keeps the (nonce, distance) pairs the host's ML nodes report during the Sprint in
SQLite (WAL, fsync on every write: a list that a broadcast commitment is built on must survive a
crash), and an in-memory `NonceList` of their leaves sorted by nonce, over which it computes the
Merkle root of `MsgPocCommit` and serves proofs.

Commitments and later nonces. The host may keep adding nonces after a commit, and new nonces can
sort *between* committed ones, so the committed list is not a prefix of the live one. Snapshots are
therefore **versions**: every row carries the sequence number of the batch that brought it; a
snapshot records (seq, count, root), and its list is exactly the rows with seq <= that number.
In memory a `NonceList` is never changed once built (adding makes a new one, reusing the unchanged
subtree roots), so a snapshot taken in this process simply keeps the list object it was made for;
after a restart the list is rebuilt from the rows of its version and its root checked against the
recorded one. Rows are never changed or deleted within an epoch, so a version stays reproducible.

Root and proofs. The tree is native/MERKLE.md's, built only by `native.merkle_root` and
`native.merkle_proof`. A list is cut into aligned blocks of BLOCK_LEAVES = 2^12 leaves; in that
tree shape every aligned block (the last one possibly short) is a subtree of its own, so the
root is `native.merkle_root` of each block, then the same pair-and-promote levels over the block
roots (a few hundred `native.node_hash` calls for 10^6 nonces). Adding nonces recomputes only the
blocks from the first changed position on, and a proof costs one block's `merkle_proof` instead of
the whole list's. Tests pin both against `native.merkle_root`/`merkle_proof` over all leaves.

Synchronous and not thread-safe: the API node calls it through `trio.to_thread.run_sync` one call
at a time (a `trio.Lock` around the store). It never talks to the chain or an ML node.
"""

from __future__ import annotations

import bisect
import logging
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import native
from api.durable import open_durable
from api.poc.proofs import (
    MAX_POSITIONS,
    NeighbourLeaf,
    PocProofResponse,
    PositionOutOfRange,
    ProvenLeaf,
)
from chain.types.poc import ProofBatch, poc_leaf
from native.merkle_spec import EMPTY_ROOT, Proof

log = logging.getLogger(__name__)

BLOCK_LEAVES = 1 << 12
# A leaf is tag || u64be(nonce) || f64be(distance): the key part ends 16 bytes before the end.
_LEAF_LEN = len(poc_leaf(0, 0.0))
_NONCE_AT = _LEAF_LEN - 16
_DIST_AT = _LEAF_LEN - 8
# Lists of the snapshots kept in memory after a restart (the live one's own are extra).
_FROZEN_CACHE = 2


def _key(nonce: int) -> bytes:
    """The leaf prefix that orders a nonce: every leaf of `nonce` starts with it."""
    return poc_leaf(nonce, 0.0)[:_DIST_AT]


def _upper_levels(blocks: list[bytes]) -> list[list[bytes]]:
    """Levels above the block roots, pairing and promoting as native/MERKLE.md says."""
    levels = [blocks]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [native.node_hash(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
        if len(cur) & 1:
            nxt.append(cur[-1])
        levels.append(nxt)
    return levels


class NonceList:
    """An immutable list of PoC leaves sorted by nonce, with its Merkle root and proofs."""

    __slots__ = ("_leaves", "_levels", "root")

    def __init__(self, leaves: list[bytes], blocks: list[bytes] | None = None) -> None:
        """`leaves` must be sorted and unique and are not copied: nobody may change them.
        `blocks` are the roots of the first aligned blocks already known (a prefix)."""
        self._leaves = leaves
        known = list(blocks or ())
        for start in range(len(known) * BLOCK_LEAVES, len(leaves), BLOCK_LEAVES):
            known.append(native.merkle_root(leaves[start:start + BLOCK_LEAVES]))
        self._levels = _upper_levels(known) if known else [[]]
        self.root: bytes = self._levels[-1][0] if known else EMPTY_ROOT

    @classmethod
    def from_pairs(cls, pairs: list[tuple[int, float]]) -> NonceList:
        """From (nonce, distance) pairs already sorted by nonce and unique."""
        return cls([poc_leaf(n, d) for n, d in pairs])

    @property
    def count(self) -> int:
        return len(self._leaves)

    def find(self, nonce: int) -> float | None:
        """The distance recorded for `nonce`, or None."""
        key = _key(nonce)
        i = bisect.bisect_left(self._leaves, key)
        if i < len(self._leaves) and self._leaves[i].startswith(key):
            return self.leaf(i)[1]
        return None

    def merged(self, new_leaves: list[bytes]) -> NonceList:
        """A new list with `new_leaves` (sorted, unique, none already here) added."""
        if not new_leaves:
            return self
        first = bisect.bisect_left(self._leaves, new_leaves[0])
        leaves = self._leaves + new_leaves
        leaves.sort()  # two sorted runs: timsort merges them in linear time
        return NonceList(leaves, self._levels[0][:first // BLOCK_LEAVES])

    def leaf(self, i: int) -> tuple[int, float]:
        """(nonce, distance) at position `i`."""
        leaf = self._leaves[i] if 0 <= i < len(self._leaves) else None
        if leaf is None:
            raise PositionOutOfRange(i, len(self._leaves))
        return (int.from_bytes(leaf[_NONCE_AT:_DIST_AT], "big"),
                struct.unpack_from(">d", leaf, _DIST_AT)[0])

    def proof(self, i: int) -> Proof:
        """Merkle proof of position `i` against `root`."""
        n = len(self._leaves)
        if not 0 <= i < n:
            raise PositionOutOfRange(i, n)
        b = i // BLOCK_LEAVES
        start = b * BLOCK_LEAVES
        inner = native.merkle_proof(self._leaves[start:start + BLOCK_LEAVES], i - start)
        siblings = list(inner.siblings)
        for level in self._levels[:-1]:
            if b & 1:
                siblings.append(level[b - 1])
            elif b + 1 < len(level):
                siblings.append(level[b + 1])
            b >>= 1
        return Proof(index=i, count=n, siblings=tuple(siblings))

    def proven(self, i: int) -> ProvenLeaf:
        """The leaf at `i` with its proof and, unless it is the last, its neighbour's."""
        nonce, distance = self.leaf(i)
        nxt = None
        if i + 1 < len(self._leaves):
            n2, d2 = self.leaf(i + 1)
            nxt = NeighbourLeaf(nonce=n2, distance=d2, proof=self.proof(i + 1))
        return ProvenLeaf(position=i, nonce=nonce, distance=distance, proof=self.proof(i),
                          next=nxt)

    def answer(self, participant: str, epoch: int, positions: list[int]) -> PocProofResponse:
        """The proof endpoint's answer for `positions` (raises PositionOutOfRange)."""
        if len(positions) > MAX_POSITIONS:
            raise ValueError(f"at most {MAX_POSITIONS} positions per request")
        return PocProofResponse(participant=participant, epoch=epoch, count=self.count,
                                root=self.root, items=[self.proven(p) for p in positions])


# --- the durable store ------------------------------------------------------------------------


class NonceStoreError(Exception):
    """A store refusal; carries what is needed to explain it."""


class ForeignBatch(NonceStoreError):
    """A batch for another PoC (key, block hash or height) than the epoch's first batch."""

    def __init__(self, field: str, expected: object, got: object) -> None:
        self.field, self.expected, self.got = field, expected, got
        super().__init__(f"batch {field} {got!r} differs from this epoch's {expected!r}")


class NothingToCommit(NonceStoreError):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        super().__init__(f"no valid nonces in epoch {epoch} yet: nothing to commit")


class UnknownCommitment(NonceStoreError):
    def __init__(self, epoch: int, count: int, root: bytes) -> None:
        self.epoch, self.count, self.root = epoch, count, root
        super().__init__(f"no snapshot of epoch {epoch} with count {count} and root "
                         f"{root.hex()}")


class CorruptSnapshot(NonceStoreError):
    """The rows of a snapshot's version no longer give its recorded root: never serve them."""

    def __init__(self, epoch: int, seq: int, expected: bytes, got: bytes) -> None:
        self.epoch, self.seq, self.expected, self.got = epoch, seq, expected, got
        super().__init__(f"snapshot {seq} of epoch {epoch}: rows give root {got.hex()}, "
                         f"recorded {expected.hex()}")


@dataclass(frozen=True)
class BatchMerge:
    """What `add_batch` did with one batch."""

    added: int
    duplicates: int  # same nonce, same distance: ignored
    conflicts: int  # same nonce, another distance: logged, the first kept
    refused: int  # no leaf (infinite distance): logged, skipped


@dataclass(frozen=True)
class Snapshot:
    """A committed version: the list of the rows with seq <= `seq`, `count` leaves, `root`."""

    epoch: int
    seq: int
    count: int
    root: bytes


_SCHEMA = """
CREATE TABLE IF NOT EXISTS poc_nonce (
    epoch INTEGER NOT NULL, nonce INTEGER NOT NULL, distance REAL NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (epoch, nonce)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS poc_source (
    epoch INTEGER PRIMARY KEY, public_key TEXT NOT NULL, block_hash TEXT NOT NULL,
    block_height INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS poc_snapshot (
    epoch INTEGER NOT NULL, seq INTEGER NOT NULL, count INTEGER NOT NULL, root BLOB NOT NULL,
    PRIMARY KEY (epoch, seq));
"""


class NonceStore:
    """The valid nonces of epoch `epoch`'s Sprint, in the SQLite file `path` (which may hold
    other epochs too). Use as a context manager or call `close()`."""

    def __init__(self, path: str | Path, epoch: int) -> None:
        self.epoch = epoch
        self._db = open_durable(path, _SCHEMA)
        rows = self._db.execute(
            "SELECT nonce, distance FROM poc_nonce WHERE epoch = ? ORDER BY nonce", (epoch,))
        self._list = NonceList.from_pairs(rows.fetchall())
        self._seq = self._db.execute("SELECT coalesce(max(seq), 0) FROM poc_nonce WHERE epoch = ?",
                                     (epoch,)).fetchone()[0]
        # Added since `_list` was built: nonce -> leaf (merged into `_list` when it is read).
        self._pending: dict[int, bytes] = {}
        self._source = self._db.execute(
            "SELECT public_key, block_hash, block_height FROM poc_source WHERE epoch = ?",
            (epoch,)).fetchone()
        self._frozen: OrderedDict[int, NonceList] = OrderedDict()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> NonceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- adding ---

    def _check_source(self, batch: ProofBatch) -> tuple[str, str, int]:
        """The epoch's PoC (key, block hash, height): the first batch's; later ones must match."""
        got = (batch.public_key, batch.block_hash, batch.block_height)
        if self._source is None:
            self._db.execute("INSERT INTO poc_source VALUES (?, ?, ?, ?)", (self.epoch, *got))
            return got
        for field, expected, value in zip(("public_key", "block_hash", "block_height"),
                                          self._source, got, strict=True):
            if expected != value:
                raise ForeignBatch(field, expected, value)
        return self._source

    def _known(self, nonce: int) -> float | None:
        leaf = self._pending.get(nonce)
        if leaf is not None:
            return struct.unpack_from(">d", leaf, _DIST_AT)[0]
        return self._list.find(nonce)

    def add_batch(self, batch: ProofBatch) -> BatchMerge:
        """Merge one ML-node batch, durably. Raises ForeignBatch for another PoC's batch.

        A nonce already held with the same distance is ignored; with another distance it is an
        error that is logged, and the first distance kept (an ML node must be deterministic).
        """
        rows: list[tuple[int, int, float, int]] = []
        duplicates = conflicts = refused = 0
        seq = self._seq + 1
        self._db.execute("BEGIN IMMEDIATE")
        try:
            source = self._check_source(batch)
            fresh: dict[int, bytes] = {}
            for nonce, distance in zip(batch.nonces, batch.dist, strict=True):
                try:
                    leaf = poc_leaf(nonce, distance)
                except ValueError as e:
                    refused += 1
                    log.error("epoch %d: nonce %d from node %d has no leaf (%s); skipped",
                              self.epoch, nonce, batch.node_id, e)
                    continue
                known = fresh.get(nonce)
                old = (struct.unpack_from(">d", known, _DIST_AT)[0] if known is not None
                       else self._known(nonce))
                if old is None:
                    fresh[nonce] = leaf
                    rows.append((self.epoch, nonce, float(distance) + 0.0, seq))
                elif old == distance:
                    duplicates += 1
                else:
                    conflicts += 1
                    log.error("epoch %d: nonce %d reported again with distance %r (kept %r), "
                              "node %d", self.epoch, nonce, distance, old, batch.node_id)
            self._db.executemany("INSERT INTO poc_nonce VALUES (?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._source = source
        if rows:
            self._seq = seq
            self._pending.update(fresh)
        return BatchMerge(len(rows), duplicates, conflicts, refused)

    # --- the live list ---

    @property
    def live(self) -> NonceList:
        """The list of every nonce added so far."""
        if self._pending:
            new = sorted(self._pending.values())
            self._list = self._list.merged(new)
            self._pending = {}
        return self._list

    def count(self) -> int:
        return self.live.count

    def root(self) -> bytes:
        return self.live.root

    def leaf(self, i: int) -> tuple[int, float]:
        return self.live.leaf(i)

    def proof(self, i: int) -> Proof:
        return self.live.proof(i)

    def proof_with_neighbour(self, i: int) -> ProvenLeaf:
        return self.live.proven(i)

    # --- snapshots ---

    def snapshot(self) -> Snapshot:
        """Freeze the list as it is now, durably, before its `MsgPocCommit` is broadcast."""
        current = self.live
        if current.count == 0:
            raise NothingToCommit(self.epoch)
        self._db.execute("INSERT OR IGNORE INTO poc_snapshot VALUES (?, ?, ?, ?)",
                         (self.epoch, self._seq, current.count, current.root))
        self._remember(self._seq, current)
        return Snapshot(self.epoch, self._seq, current.count, current.root)

    def snapshots(self) -> list[Snapshot]:
        """Every snapshot of the epoch, oldest first."""
        rows = self._db.execute("SELECT seq, count, root FROM poc_snapshot WHERE epoch = ? "
                                "ORDER BY seq", (self.epoch,)).fetchall()
        return [Snapshot(self.epoch, s, c, bytes(r)) for s, c, r in rows]

    def committed(self, count: int, root: bytes) -> NonceList:
        """The frozen list behind the commitment (`count`, `root`) the chain recorded: what the
        proof endpoint serves. Raises UnknownCommitment if no snapshot made it."""
        row = self._db.execute(
            "SELECT seq FROM poc_snapshot WHERE epoch = ? AND count = ? AND root = ? "
            "ORDER BY seq LIMIT 1", (self.epoch, count, root)).fetchone()
        if row is None:
            raise UnknownCommitment(self.epoch, count, root)
        seq = row[0]
        frozen = self._frozen.get(seq)
        if frozen is None:
            pairs = self._db.execute(
                "SELECT nonce, distance FROM poc_nonce WHERE epoch = ? AND seq <= ? "
                "ORDER BY nonce", (self.epoch, seq)).fetchall()
            frozen = NonceList.from_pairs(pairs)
            if frozen.root != root or frozen.count != count:
                raise CorruptSnapshot(self.epoch, seq, root, frozen.root)
        self._remember(seq, frozen)
        return frozen

    def _remember(self, seq: int, frozen: NonceList) -> None:
        self._frozen[seq] = frozen
        self._frozen.move_to_end(seq)
        while len(self._frozen) > _FROZEN_CACHE:
            self._frozen.popitem(last=False)
