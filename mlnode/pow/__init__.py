"""Proof of Work 2.0: the PoC function (SPEC.md), its CPU reference and the fraud test."""
