"""Errors of keys, addresses and key stores; each carries what is needed to explain it."""

from __future__ import annotations


class CryptoError(ValueError):
    """Base of every error raised for a malformed key, address, mnemonic or key file."""


class InvalidAddress(CryptoError):
    def __init__(self, address: object, reason: str) -> None:
        super().__init__(f"invalid address {address!r}: {reason}")
        self.address = address
        self.reason = reason
