"""The chain node: consensus, p2p, mempool, block store, state machine, RPC (DESIGN.md section 4).

`chain.types` holds the wire types shared with `api` and `mlnode`; `chain.crypto` keys and hashes.
"""
