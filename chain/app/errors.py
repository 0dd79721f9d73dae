"""Why a transaction failed, as types: each error carries its ABCI code, codespace and the data
that explains it, and `str(error)` is the one-line log a client sees in its TxResult.

Codes below 100 are the boundary's own (chain.app.abci); modules number theirs from 100 up
(100-199 bank, 200-299 auth/authz, 300-399 gov, 400-499 params). An error never changes state:
the handler that raises it has its writes discarded.
"""

from __future__ import annotations

from chain.app import abci


class TxError(Exception):
    """A tx (or one of its messages) that the state machine refuses."""

    code: int = abci.ERR_INTERNAL
    codespace: str = ""

    def __init__(self, log: str) -> None:
        super().__init__(log)
        self.log = log


class TxDecodeError(TxError):
    code = abci.ERR_DECODE
    codespace = "tx"


class SignatureInvalid(TxError):
    code = abci.ERR_SIGNATURE
    codespace = "tx"


class WrongChainId(TxError):
    code = abci.ERR_CHAIN_ID
    codespace = "tx"

    def __init__(self, got: str, expected: str) -> None:
        super().__init__(f"tx is for chain {got!r}, this chain is {expected!r}")
        self.got, self.expected = got, expected


class TimeoutPassed(TxError):
    code = abci.ERR_TIMEOUT
    codespace = "tx"

    def __init__(self, timeout_height: int, height: int) -> None:
        super().__init__(f"tx timeout_height {timeout_height} has passed (height {height})")
        self.timeout_height, self.height = timeout_height, height


class TimeoutTooFar(TxError):
    code = abci.ERR_TIMEOUT
    codespace = "tx"

    def __init__(self, timeout_height: int, height: int, max_blocks: int) -> None:
        super().__init__(f"tx timeout_height {timeout_height} is more than {max_blocks} blocks "
                         f"ahead of height {height}")
        self.timeout_height, self.height, self.max_blocks = timeout_height, height, max_blocks


class DuplicateTx(TxError):
    code = abci.ERR_DUPLICATE
    codespace = "tx"

    def __init__(self, tx_hash: bytes, timeout_height: int) -> None:
        super().__init__(f"tx {tx_hash.hex()} was already seen; it stays refused until its "
                         f"timeout_height {timeout_height}")
        self.tx_hash, self.timeout_height = tx_hash, timeout_height


class UnknownMessage(TxError):
    code = abci.ERR_INTERNAL
    codespace = "tx"

    def __init__(self, tag: str) -> None:
        super().__init__(f"no handler for message type {tag}")
        self.tag = tag


class QueryError(Exception):
    """A query that cannot be answered; `code` goes into QueryResult (see PROTOCOL.md)."""

    code = 1

    def __init__(self, log: str) -> None:
        super().__init__(log)
        self.log = log


class UnknownQuery(QueryError):
    code = 1


class BadQuery(QueryError):
    code = 2


class NotFound(QueryError):
    code = 3


class ChainHalt(RuntimeError):
    """The node must stop: continuing would build on state other nodes do not share."""


class AppHashMismatch(ChainHalt):
    """Our state after `height` differs from the one the network committed."""

    def __init__(self, height: int, ours: bytes, theirs: bytes) -> None:
        super().__init__(
            f"app hash mismatch at height {height}: this node computed {ours.hex()}, the block "
            f"of height {height + 1} says {theirs.hex()}; this node's state diverged, stopping"
        )
        self.height, self.ours, self.theirs = height, ours, theirs
