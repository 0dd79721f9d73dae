"""The boundary between consensus and the state machine, shaped like ABCI++ (DESIGN.md section 4).

Consensus, the mempool, block sync and the RPC talk to the application only through `Application`.
Calls are synchronous and deterministic: given the same genesis and the same sequence of
`finalize_block`/`commit` calls, every node computes the same results and app hashes. Nothing here
may do network I/O or read the clock; block time comes in the header.

Call order on a node:
    info()                                   -> where the application's state stands (restart)
    init_chain(genesis)                      -> once, on an empty state
    check_tx(raw, ...)                       -> mempool admission (any time, on a copy of state)
    prepare_proposal(txs, ...)               -> the proposer picks and orders txs
    process_proposal(block)                  -> every validator judges a proposed block
    finalize_block(block) then commit()      -> exactly once per committed block, in height order
    query(path, params)                      -> read-only, on committed state

Validator updates returned by `finalize_block` at height h take effect at height h + 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Protocol

import msgspec

from chain.types.block import Block
from chain.types.genesis import Genesis

# Result codes of a tx: 0 is success; the rest name the failure. Modules add their own codes
# from 100 up (100-199 bank, 200-299 auth/authz, 300-399 gov, ...).
OK = 0
ERR_DECODE = 1  # bytes are not a canonical tx
ERR_SIGNATURE = 2  # signature or signer mismatch
ERR_CHAIN_ID = 3
ERR_TIMEOUT = 4  # timeout_height passed or too far ahead
ERR_DUPLICATE = 5  # hash seen before (replay)
ERR_MEMPOOL_FULL = 6
ERR_SENDER_QUOTA = 7
ERR_TOO_LARGE = 8
ERR_UNAUTHORIZED = 9
ERR_INTERNAL = 99


class Attribute(msgspec.Struct, frozen=True, array_like=True):
    key: str
    value: str


class Event(msgspec.Struct, frozen=True):
    """Something that happened, for clients: `type` like "transfer", attributes in order."""

    type: str
    attributes: tuple[Attribute, ...] = ()


class TxResult(msgspec.Struct, frozen=True):
    """What executing (or checking) one tx did. `code` OK means it took effect."""

    code: int = OK
    log: str = ""
    events: tuple[Event, ...] = ()
    # The module-specific codes carry a codespace so that clients can tell them apart.
    codespace: str = ""


class CheckTxResult(msgspec.Struct, frozen=True):
    code: int = OK
    log: str = ""
    # The tx's signer, so that the mempool can apply per-sender quotas.
    sender: str = ""
    # Block height after which the tx can never be included (its timeout_height).
    timeout_height: int = 0
    codespace: str = ""


class ValidatorUpdate(msgspec.Struct, frozen=True):
    """Set a validator's voting power; power 0 removes it. Applies two heights later."""

    pubkey: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    power: Annotated[int, msgspec.Meta(ge=0)]


class FinalizeBlockResult(msgspec.Struct, frozen=True):
    """One TxResult per tx of the block, in order, plus block-level events and validator updates."""

    tx_results: tuple[TxResult, ...]
    events: tuple[Event, ...] = ()
    validator_updates: tuple[ValidatorUpdate, ...] = ()


class AppInfo(msgspec.Struct, frozen=True):
    """The last committed height (0 before the first block) and its app hash."""

    last_height: int
    last_app_hash: bytes


class InitChainResult(msgspec.Struct, frozen=True):
    """The app hash before the first block, and the first validator set."""

    app_hash: bytes
    validators: tuple[ValidatorUpdate, ...]


class QueryResult(msgspec.Struct, frozen=True):
    """`value` is JSON bytes; `code` is OK, or non-zero with `log` saying why (unknown path...)."""

    code: int = OK
    value: bytes = b"null"
    log: str = ""
    height: int = 0


class Application(Protocol):
    def info(self) -> AppInfo: ...

    def init_chain(self, genesis: Genesis) -> InitChainResult: ...

    def check_tx(self, raw: bytes, *, recheck: bool = False,
                 signature_verified: bool = False) -> CheckTxResult:
        """Would `raw` be accepted on top of the latest committed state (plus what the mempool
        already admitted)? `signature_verified` says the caller checked the signature already
        (the mempool verifies batches through `native.verify_batch_secp256k1`)."""
        ...

    def prepare_proposal(self, txs: Sequence[bytes], *, height: int, time_ns: int,
                         max_bytes: int, max_txs: int) -> list[bytes]: ...

    def process_proposal(self, block: Block) -> bool: ...

    def finalize_block(self, block: Block) -> FinalizeBlockResult: ...

    def commit(self) -> bytes:
        """Make the finalized block's writes durable (one SQLite transaction); return the app
        hash: BLAKE3(previous app hash || Merkle root of the block's sorted write set)."""
        ...

    def query(self, path: str, params: dict[str, str], *, height: int | None = None) -> QueryResult:
        ...
