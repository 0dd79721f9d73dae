"""The API node's side of PoC commitments (DESIGN.md section 5, "PoC on chain").

`nonce_store`: the host's valid nonces of an epoch, the Merkle root it commits and the proofs it
serves for a committed snapshot. `proofs`: the proof endpoint's wire types and the validator's
check of an answer. `sampling`: which positions a validator checks, and its binomial verdict
(`chain.types.poc_fraud`). No HTTP, chain or ML-node calls here: the orchestration uses these
pieces.
"""
