"""BIP-39 mnemonics and the Cosmos HD path to secp256k1 account keys (DESIGN.md section 3).

A mnemonic is checked (word list, word count, checksum) before anything is derived from it, and
derivation follows BIP-32 on m/44'/118'/account'/0/index, so a developer's existing Cosmos
mnemonic yields the same key (and the same 20-byte account id) here. The word list, checksum and
seed stretching come from the `mnemonic` (trezor) package, child derivation from `bip32`.

This module must never print, log or put a mnemonic in an error message; an error names at most
the one word that is not in the list, so the user can find their typo.
"""

from __future__ import annotations

import difflib
import unicodedata

from bip32 import BIP32
from mnemonic import Mnemonic

from chain.crypto import secp256k1
from chain.crypto.errors import InvalidMnemonic

__all__ = [
    "COSMOS_COIN_TYPE",
    "InvalidMnemonic",
    "WORD_COUNTS",
    "generate_mnemonic",
    "hd_path",
    "key_from_mnemonic",
    "validate_mnemonic",
]

COSMOS_COIN_TYPE = 118
WORD_COUNTS = (12, 15, 18, 21, 24)
_HARDENED = 2**31

_english = Mnemonic("english")
_words = frozenset(_english.wordlist)


def generate_mnemonic(words: int = 24) -> str:
    """A fresh random mnemonic of `words` English words (system CSPRNG)."""
    if words not in WORD_COUNTS:
        raise ValueError(f"a mnemonic has {_counts_text()} words, not {words}")
    return _english.generate(strength=words * 32 // 3)


def validate_mnemonic(text: str) -> str:
    """The canonical form of `text` (NFKD, lower case, single spaces), or InvalidMnemonic.

    Checks, in this order: word count, every word in the BIP-39 English list, the checksum.
    """
    if not isinstance(text, str):
        raise InvalidMnemonic("a mnemonic is a string of words")
    words = unicodedata.normalize("NFKD", text).lower().split()
    if not words:
        raise InvalidMnemonic("it is empty")
    if len(words) not in WORD_COUNTS:
        raise InvalidMnemonic(f"expected {_counts_text()} words, got {len(words)}")
    for position, word in enumerate(words, start=1):
        if word not in _words:
            raise InvalidMnemonic(
                f"word {position} {word!r} is not in the BIP-39 English list{_suggestion(word)}"
            )
    canonical = " ".join(words)
    if not _english.check(canonical):
        raise InvalidMnemonic("checksum mismatch (a word is wrong or the words are out of order)")
    return canonical


def hd_path(account: int = 0, index: int = 0) -> str:
    """The Cosmos BIP-44 path m/44'/118'/account'/0/index."""
    for what, value in (("account", account), ("index", index)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _HARDENED:
            raise ValueError(f"{what} must be an integer in [0, 2**31), got {value!r}")
    return f"m/44'/{COSMOS_COIN_TYPE}'/{account}'/0/{index}"


def key_from_mnemonic(
    mnemonic: str, bip39_passphrase: str = "", account: int = 0, index: int = 0
) -> secp256k1.PrivateKey:
    """The account key of `mnemonic` (validated first) on m/44'/118'/account'/0/index.

    `bip39_passphrase` is the optional BIP-39 "25th word", not the key store's passphrase.
    """
    path = hd_path(account, index)
    seed = Mnemonic.to_seed(validate_mnemonic(mnemonic), bip39_passphrase)
    return secp256k1.PrivateKey(BIP32.from_seed(seed).get_privkey_from_path(path))


def _counts_text() -> str:
    return ", ".join(map(str, WORD_COUNTS[:-1])) + f" or {WORD_COUNTS[-1]}"


def _suggestion(word: str) -> str:
    close = difflib.get_close_matches(word, _english.wordlist, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
