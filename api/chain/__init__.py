"""The API node's chain client (DESIGN.md section 6).

  outbox.py   Outbox: the durable queue of protocol messages to send (SQLite), with each
              message's state (queued, sent, included, rejected) and the tx that carries it
  sender.py   TxSender: batches queued messages into signed txs (authz MsgExec for a warm key),
              broadcasts them, and follows each until it is included or definitely rejected
  events.py   EventFollower: every block's events once, in order, resuming from the last
              processed height after a disconnect or a restart

Chain reads and writes go through `chain.rpc.client.RpcClient`; wire types come from
`chain.types`. Nothing here imports the chain node's internals.
"""

from api.chain.events import BlockIterator, EventFollower, FollowerError, HeightGap
from api.chain.outbox import Outbox, OutboxEntry, OutboxError, PendingTx
from api.chain.sender import (
    ChainClientError,
    SenderHealth,
    Settlement,
    TxSender,
    UnknownMessage,
    WrongChain,
)

__all__ = [
    "BlockIterator",
    "ChainClientError",
    "EventFollower",
    "FollowerError",
    "HeightGap",
    "Outbox",
    "OutboxEntry",
    "OutboxError",
    "PendingTx",
    "SenderHealth",
    "Settlement",
    "TxSender",
    "UnknownMessage",
    "WrongChain",
]
