"""The chain node process: the trio shell that wires consensus, p2p, mempool, app, stores and RPC.

`chain.node.home` is the home folder layout and `chain.node.config` the node settings.
"""
