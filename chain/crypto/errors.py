"""Errors of keys, addresses and key stores; each carries what is needed to explain it."""

from __future__ import annotations


class CryptoError(ValueError):
    """Base of every error raised for a malformed key, address, mnemonic or key file."""


class InvalidAddress(CryptoError):
    def __init__(self, address: object, reason: str) -> None:
        super().__init__(f"invalid address {address!r}: {reason}")
        self.address = address
        self.reason = reason


class InvalidMnemonic(CryptoError):
    """A BIP-39 mnemonic that is malformed; `reason` says which word or check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid mnemonic: {reason}")
        self.reason = reason


class KeystoreError(CryptoError):
    """Base of the errors of the key store and of key files on disk."""


class InvalidKeyName(KeystoreError):
    def __init__(self, name: object, reason: str) -> None:
        super().__init__(f"invalid key name {name!r}: {reason}")
        self.name = name
        self.reason = reason


class KeyNotFound(KeystoreError):
    def __init__(self, name: str, where: object = None) -> None:
        super().__init__(f"no key named {name!r}" + (f" in {where}" if where else ""))
        self.name = name


class KeyExists(KeystoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a key named {name!r} already exists")
        self.name = name


class WrongPassphrase(KeystoreError):
    """The passphrase does not open the key (or the ciphertext was altered: the two look alike)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"wrong passphrase for key {name!r}")
        self.name = name


class WeakPassphrase(KeystoreError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"passphrase rejected: {reason}")
        self.reason = reason


class CorruptKeyFile(KeystoreError):
    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"corrupt key file {path}: {reason}")
        self.path = path
        self.reason = reason


class KeyFileNotFound(KeystoreError):
    """A key file that is looked up by path (node and validator keys), not by name."""

    def __init__(self, path: object) -> None:
        super().__init__(f"key file {path} does not exist")
        self.path = path
