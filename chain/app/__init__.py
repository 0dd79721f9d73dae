"""The application (state machine) of the chain: modules, their handlers and queries, and
`GonkaApp` (chain.app.app), which implements the ABCI++-shaped boundary of chain.app.abci.
"""
