"""The key store of account keys in a node's home folder (`gonka keys`).

`Keystore(home)` keeps one JSON file per account key in `home/keyring/NAME.json` (folder 0700,
files 0600, each written atomically). The public part (name, address, public key, HD path) is
readable without the passphrase; the secret part (the 32-byte private key, and the mnemonic and
BIP-39 passphrase when the key came from a mnemonic) is sealed with XSalsa20-Poly1305
(`nacl.secret.SecretBox`) under a key stretched from the passphrase with Argon2id. The Argon2id
cost is stored in each file, so it can be raised later without breaking older files.

Cost of new keys: `KDF_PRESETS[os.environ.get("GONKA_KEYRING_KDF", "interactive")]`, or the `kdf`
argument of `Keystore`. The "minimum" preset exists only so test suites stay fast: it makes a
stolen key file cheap to brute-force and must not be used for real keys.

Loading a key checks that the decrypted key has the stored address and public key (and that the
stored mnemonic derives it), so a corrupted or edited file is an error, never a different key.

This module must never write a secret unencrypted unless the caller asked for it explicitly
(`passphrase=None`, the "test" backend), and never log, print or repr a secret.
"""

from __future__ import annotations

import os
import re
import secrets
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec
import msgspec.structs
import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.secret

from chain.crypto import secp256k1
from chain.crypto.address import address_from_pubkey
from chain.crypto.errors import (
    CorruptKeyFile,
    CryptoError,
    InvalidKeyName,
    KeyExists,
    KeyNotFound,
    WeakPassphrase,
    WrongPassphrase,
)
from chain.crypto.mnemonic import generate_mnemonic, hd_path, key_from_mnemonic, validate_mnemonic
from chain.crypto.private_files import ensure_private_dir, fsync_dir, write_private_file

FORMAT_VERSION = 1
ENCRYPTED = "argon2id+xsalsa20poly1305"
UNENCRYPTED = "none"
MIN_PASSPHRASE_LENGTH = 8
KEYRING_DIR = "keyring"
KDF_ENV = "GONKA_KEYRING_KDF"

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
_HD_PATH = re.compile(r"m/44'/118'/(\d+)'/0/(\d+)")


class KdfParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Argon2id cost (libsodium units) and salt (hex) of one key file."""

    opslimit: int
    memlimit: int
    salt: str = ""


KDF_PRESETS = {
    "interactive": KdfParams(argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": KdfParams(argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE),
    "sensitive": KdfParams(argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE),
    "minimum": KdfParams(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN),  # tests only
}


class Secret(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """What the passphrase protects. `repr` never shows it."""

    private_key: str  # 64 hex characters
    mnemonic: str | None = None
    bip39_passphrase: str = ""

    def __repr__(self) -> str:
        return "Secret(<hidden>)"


class KeyFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One key file of the key store, as stored (JSON)."""

    version: int
    name: str
    kind: Literal["secp256k1"]
    address: str
    pubkey: str  # hex of the 33-byte compressed key
    created: str  # ISO 8601, UTC
    encryption: Literal["argon2id+xsalsa20poly1305", "none"]
    hd_path: str | None = None  # set when the key was derived from a mnemonic
    kdf: KdfParams | None = None
    nonce: str | None = None
    ciphertext: str | None = None
    plaintext: Secret | None = None  # only when encryption == "none"


class KeyInfo(msgspec.Struct, frozen=True):
    """The public part of a stored key: what `list` and `show` report without a passphrase."""

    name: str
    kind: str
    address: str
    pubkey: str
    created: str
    encryption: str
    hd_path: str | None = None

    @property
    def encrypted(self) -> bool:
        return self.encryption != UNENCRYPTED


def check_key_name(name: object) -> str:
    """`name` if it is 1-64 of [A-Za-z0-9_.-] not starting with '.'; else InvalidKeyName."""
    if not isinstance(name, str) or not name:
        raise InvalidKeyName(name, "a name is 1 to 64 characters")
    if len(name) > 64:
        raise InvalidKeyName(name, f"at most 64 characters, got {len(name)}")
    if name.startswith("."):
        raise InvalidKeyName(name, "must not start with '.'")
    if not _NAME.fullmatch(name):
        raise InvalidKeyName(name, "only letters, digits, '_', '-' and '.' are allowed")
    return name


class Keystore:
    """Account keys of one home folder. `passphrase=None` stores and loads a key unencrypted."""

    def __init__(self, home: Path | str, *, kdf: KdfParams | None = None) -> None:
        self.home = Path(home)
        self.dir = self.home / KEYRING_DIR
        if kdf is None:
            preset = os.environ.get(KDF_ENV, "interactive")
            if preset not in KDF_PRESETS:
                choices = ", ".join(KDF_PRESETS)
                raise CryptoError(f"{KDF_ENV} must be one of {choices}, not {preset!r}")
            kdf = KDF_PRESETS[preset]
        if not _kdf_in_range(kdf):
            raise CryptoError("Argon2id opslimit or memlimit out of libsodium's range")
        self.kdf = kdf

    # -- adding keys

    def add_new(
        self,
        name: str,
        passphrase: str | None,
        words: int = 24,
        *,
        account: int = 0,
        index: int = 0,
        overwrite: bool = False,
    ) -> tuple[KeyInfo, str]:
        """A key from a fresh mnemonic; returns its info and the mnemonic to show once."""
        check_key_name(name)
        mnemonic = generate_mnemonic(words)
        info = self.add_recovered(
            name, mnemonic, passphrase, account=account, index=index, overwrite=overwrite
        )
        return info, mnemonic

    def add_recovered(
        self,
        name: str,
        mnemonic: str,
        passphrase: str | None,
        *,
        bip39_passphrase: str = "",
        account: int = 0,
        index: int = 0,
        overwrite: bool = False,
    ) -> KeyInfo:
        """The key of an existing mnemonic on m/44'/118'/account'/0/index."""
        check_key_name(name)
        canonical = validate_mnemonic(mnemonic)
        key = key_from_mnemonic(canonical, bip39_passphrase, account, index)
        secret = Secret(key.secret.hex(), canonical, bip39_passphrase)
        return self._add(name, key, secret, passphrase, hd_path(account, index), overwrite)

    def add_private_key(
        self, name: str, secret: bytes, passphrase: str | None, *, overwrite: bool = False
    ) -> KeyInfo:
        """A raw 32-byte secp256k1 private key (no mnemonic to export later)."""
        check_key_name(name)
        key = secp256k1.PrivateKey(secret)
        return self._add(name, key, Secret(key.secret.hex()), passphrase, None, overwrite)

    # -- reading keys

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def list(self) -> list[KeyInfo]:
        """Every stored key, by name; a corrupt file raises CorruptKeyFile naming it."""
        if not self.dir.is_dir():
            return []
        paths = sorted(p for p in self.dir.glob("*.json") if not p.name.startswith("."))
        return [_info(self._read(p)) for p in paths]

    def show(self, name: str) -> KeyInfo:
        return _info(self._read(self._path(name)))

    def load(self, name: str, passphrase: str | None) -> secp256k1.PrivateKey:
        """The private key of `name`; WrongPassphrase if `passphrase` does not open it."""
        return secp256k1.PrivateKey(bytes.fromhex(self._unlock(name, passphrase).private_key))

    def load_mnemonic(self, name: str, passphrase: str | None) -> str | None:
        """The mnemonic `name` was made from, or None for an imported private key."""
        return self._unlock(name, passphrase).mnemonic

    def delete(self, name: str) -> None:
        """Removes `name` without reading it, so a corrupt file can be removed too."""
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise KeyNotFound(name, self.dir) from None
        fsync_dir(self.dir)

    # -- internals

    def _path(self, name: str) -> Path:
        return self.dir / f"{check_key_name(name)}.json"

    def _add(
        self,
        name: str,
        key: secp256k1.PrivateKey,
        secret: Secret,
        passphrase: str | None,
        path_used: str | None,
        overwrite: bool,
    ) -> KeyInfo:
        if not overwrite and self.exists(name):
            raise KeyExists(name)
        record = KeyFile(
            version=FORMAT_VERSION,
            name=name,
            kind="secp256k1",
            address=key.address,
            pubkey=key.public_key.hex(),
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            encryption=UNENCRYPTED,
            hd_path=path_used,
        )
        if passphrase is None:
            record = msgspec.structs.replace(record, plaintext=secret)
        else:
            if len(passphrase) < MIN_PASSPHRASE_LENGTH:
                raise WeakPassphrase(f"use at least {MIN_PASSPHRASE_LENGTH} characters")
            salt = secrets.token_bytes(argon2id.SALTBYTES)
            kdf = msgspec.structs.replace(self.kdf, salt=salt.hex())
            nonce = secrets.token_bytes(nacl.secret.SecretBox.NONCE_SIZE)
            box = nacl.secret.SecretBox(_stretch(passphrase, kdf))
            sealed = box.encrypt(msgspec.json.encode(secret), nonce).ciphertext
            record = msgspec.structs.replace(
                record, encryption=ENCRYPTED, kdf=kdf, nonce=nonce.hex(), ciphertext=sealed.hex()
            )
        ensure_private_dir(self.home)
        ensure_private_dir(self.dir, tighten=True)
        data = msgspec.json.format(msgspec.json.encode(record))
        try:
            write_private_file(self._path(name), data, overwrite)
        except FileExistsError:
            raise KeyExists(name) from None
        return _info(record)

    def _read(self, path: Path) -> KeyFile:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise KeyNotFound(path.stem, self.dir) from None
        try:
            check_key_name(path.stem)
        except InvalidKeyName as e:
            raise CorruptKeyFile(path, f"the file name is not a key name ({e.reason})") from None
        try:
            record = msgspec.json.decode(raw, type=KeyFile)
        except msgspec.DecodeError as e:  # ValidationError included; neither quotes values
            raise CorruptKeyFile(path, str(e)) from None
        _check_record(path, record)
        return record

    def _unlock(self, name: str, passphrase: str | None) -> Secret:
        path = self._path(name)
        record = self._read(path)
        if record.encryption == UNENCRYPTED:
            secret = record.plaintext
        else:
            if passphrase is None:
                raise WrongPassphrase(name)
            assert record.kdf and record.nonce and record.ciphertext  # _check_record
            box = nacl.secret.SecretBox(_stretch(passphrase, record.kdf))
            try:
                opened = box.decrypt(bytes.fromhex(record.ciphertext), bytes.fromhex(record.nonce))
            except nacl.exceptions.CryptoError:
                raise WrongPassphrase(name) from None
            try:
                secret = msgspec.json.decode(opened, type=Secret)
            except msgspec.DecodeError as e:
                raise CorruptKeyFile(path, f"sealed secret: {e}") from None
        assert secret is not None
        _check_secret(path, record, secret)
        return secret


def _info(record: KeyFile) -> KeyInfo:
    return KeyInfo(
        name=record.name,
        kind=record.kind,
        address=record.address,
        pubkey=record.pubkey,
        created=record.created,
        encryption=record.encryption,
        hd_path=record.hd_path,
    )


def _check_record(path: Path, record: KeyFile) -> None:
    """Consistency of the public part: version, name, address of the pubkey, encryption fields."""
    if record.version != FORMAT_VERSION:
        raise CorruptKeyFile(path, f"unsupported format version {record.version}")
    if record.name != path.stem:
        raise CorruptKeyFile(path, f"it holds key {record.name!r}, not {path.stem!r}")
    try:
        pubkey = bytes.fromhex(record.pubkey)
        address = address_from_pubkey(pubkey)
    except ValueError:  # CryptoError included
        raise CorruptKeyFile(path, "pubkey is not a hex compressed secp256k1 key") from None
    if address != record.address:
        raise CorruptKeyFile(path, "the address does not belong to the pubkey")
    if record.encryption == UNENCRYPTED:
        if record.plaintext is None or record.kdf or record.nonce or record.ciphertext:
            raise CorruptKeyFile(path, "an unencrypted key has 'plaintext' and no cipher fields")
        return
    if record.plaintext is not None or not (record.kdf and record.nonce and record.ciphertext):
        raise CorruptKeyFile(path, "an encrypted key has 'kdf', 'nonce' and 'ciphertext' only")
    if not _kdf_in_range(record.kdf):
        raise CorruptKeyFile(path, "Argon2id opslimit or memlimit out of libsodium's range")
    try:
        salt, nonce = bytes.fromhex(record.kdf.salt), bytes.fromhex(record.nonce)
        bytes.fromhex(record.ciphertext)
    except ValueError:
        raise CorruptKeyFile(path, "salt, nonce or ciphertext is not hex") from None
    if len(salt) != argon2id.SALTBYTES or len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise CorruptKeyFile(path, "salt or nonce has the wrong length")


def _check_secret(path: Path, record: KeyFile, secret: Secret) -> None:
    """The secret must give the stored public key (and the mnemonic the stored secret)."""
    try:
        key = secp256k1.PrivateKey(bytes.fromhex(secret.private_key))
    except ValueError:  # CryptoError included
        raise CorruptKeyFile(path, "the private key is malformed") from None
    if key.public_key.hex() != record.pubkey or key.address != record.address:
        raise CorruptKeyFile(path, "the private key does not match the stored address")
    if secret.mnemonic is None:
        return
    m = _HD_PATH.fullmatch(record.hd_path or "")
    try:
        if m is None:
            raise ValueError("no Cosmos hd_path")
        derived = key_from_mnemonic(secret.mnemonic, secret.bip39_passphrase, int(m[1]), int(m[2]))
    except ValueError:  # CryptoError included
        derived = None
    if derived is None or derived.secret != key.secret:
        raise CorruptKeyFile(path, "the stored mnemonic and hd_path do not derive the stored key")


def _kdf_in_range(kdf: KdfParams) -> bool:
    return (
        argon2id.OPSLIMIT_MIN <= kdf.opslimit <= argon2id.OPSLIMIT_MAX
        and argon2id.MEMLIMIT_MIN <= kdf.memlimit <= argon2id.MEMLIMIT_MAX
    )


def _stretch(passphrase: str, kdf: KdfParams) -> bytes:
    password = unicodedata.normalize("NFKD", passphrase).encode()
    salt = bytes.fromhex(kdf.salt)
    key_size = nacl.secret.SecretBox.KEY_SIZE
    return argon2id.kdf(key_size, password, salt, opslimit=kdf.opslimit, memlimit=kdf.memlimit)
