"""Consensus misbehaviour on chain: what the application does with the duplicate-vote evidence
that consensus validated and a block carries (the validator's host loses its power and part of
its collateral, and its consensus key is tombstoned).
"""
