"""Files of ed25519 node and validator keys (`node_key.json`, `priv_validator_key.json`).

A file is JSON: {"kind": "ed25519", "pubkey": hex, "seed": hex}, mode 0600, written atomically.
These keys sign p2p handshakes and consensus votes without a human at hand, so they are stored
unencrypted, like CometBFT's; protecting them is the job of the file mode and the host.
Loading checks the public key against the seed, so a damaged file is an error, never another key.
This module must never print or repr a seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

from chain.crypto import ed25519
from chain.crypto.errors import CorruptKeyFile, KeyExists, KeyFileNotFound
from chain.crypto.private_files import ensure_private_dir, write_private_file


class NodeKeyFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: Literal["ed25519"]
    pubkey: str  # hex, 32 bytes
    seed: str  # hex, 32 bytes

    def __repr__(self) -> str:
        return f"NodeKeyFile(pubkey={self.pubkey})"


def save_node_key(path: Path | str, key: ed25519.PrivateKey, *, overwrite: bool = False) -> None:
    """Writes `key` to `path` (folder created 0700 when missing); KeyExists if the file exists
    and not `overwrite`."""
    path = Path(path)
    record = NodeKeyFile("ed25519", key.public_key.hex(), key.seed.hex())
    ensure_private_dir(path.parent)
    try:
        write_private_file(path, msgspec.json.format(msgspec.json.encode(record)), overwrite)
    except FileExistsError:
        raise KeyExists(str(path)) from None


def load_node_key(path: Path | str) -> ed25519.PrivateKey:
    """The key in `path`; KeyFileNotFound, or CorruptKeyFile when malformed or pubkey != seed's."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileNotFound(path) from None
    try:
        record = msgspec.json.decode(raw, type=NodeKeyFile)
    except msgspec.DecodeError as e:  # messages name the field, never its value
        raise CorruptKeyFile(path, str(e)) from None
    try:
        key = ed25519.PrivateKey(bytes.fromhex(record.seed))
    except ValueError:  # not hex, or InvalidNodeKey (a CryptoError, hence a ValueError)
        raise CorruptKeyFile(path, "seed is not 32 bytes of hex") from None
    if key.public_key.hex() != record.pubkey:
        raise CorruptKeyFile(path, "pubkey does not belong to the seed")
    return key
