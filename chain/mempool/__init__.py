"""The mempool: txs waiting for a block, admitted by batch, kept in arrival order.

A pure core (`Mempool`) that the node's trio shell feeds with raw txs from clients and peers and
with committed blocks; it never does I/O itself. See `chain.mempool.mempool`.
"""

from chain.mempool.mempool import AddResult, Mempool, PeerId, UpdateResult
from chain.mempool.replay import CommittedHashes, RejectedHashes

__all__ = ["AddResult", "CommittedHashes", "Mempool", "PeerId", "RejectedHashes", "UpdateResult"]
