"""BIP-39 mnemonics and Cosmos HD derivation (chain.crypto.mnemonic)."""

from __future__ import annotations

import bech32
import pytest

from chain.crypto import secp256k1
from chain.crypto.address import address_to_bytes
from chain.crypto.errors import CryptoError
from chain.crypto.mnemonic import (
    InvalidMnemonic,
    generate_mnemonic,
    hd_path,
    key_from_mnemonic,
    validate_mnemonic,
)

ABANDON = " ".join(["abandon"] * 11 + ["about"])
# The same account under Cosmos Hub's prefix, as `gaiad keys add --recover` prints it.
ABANDON_COSMOS = "cosmos19rl4cm2hmr8afy4kldpxz3fka4jguq0auqdal4"
ABANDON_GONKA = "gonka19rl4cm2hmr8afy4kldpxz3fka4jguq0av42rch"
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_known_mnemonic_gives_the_cosmos_account():
    key = key_from_mnemonic(ABANDON)

    assert key.address == ABANDON_GONKA
    hrp, data = bech32.bech32_decode(ABANDON_COSMOS)
    assert hrp == "cosmos"
    assert address_to_bytes(key.address) == bytes(bech32.convertbits(data, 5, 8, False))


def test_derivation_is_stable_and_ignores_spacing_and_case():
    messy = "  ABANDON abandon\tabandon abandon abandon abandon\n" + "abandon " * 5 + " About \n"

    addresses = {key_from_mnemonic(m).address for m in (ABANDON, messy, ABANDON, messy)}

    assert addresses == {ABANDON_GONKA}
    assert validate_mnemonic(messy) == ABANDON


def test_path_parts_and_bip39_passphrase_select_other_keys():
    base = key_from_mnemonic(ABANDON).address
    others = [
        key_from_mnemonic(ABANDON, account=1).address,
        key_from_mnemonic(ABANDON, index=1).address,
        key_from_mnemonic(ABANDON, bip39_passphrase="TREZOR").address,
    ]

    assert base not in others
    assert len(set(others)) == 3


def test_hd_path_is_cosmos_bip44():
    assert hd_path() == "m/44'/118'/0'/0/0"
    assert hd_path(3, 7) == "m/44'/118'/3'/0/7"
    for bad in (-1, 2**31, True, "0"):
        with pytest.raises(ValueError):
            hd_path(index=bad)


@pytest.mark.parametrize("words", [12, 15, 18, 21, 24])
def test_generated_mnemonics_validate_and_derive_the_same_key_twice(words):
    mnemonic = generate_mnemonic(words)

    assert len(mnemonic.split()) == words
    assert validate_mnemonic(mnemonic) == mnemonic
    assert key_from_mnemonic(mnemonic).secret == key_from_mnemonic(mnemonic).secret


def test_generated_mnemonics_are_fresh_and_24_words_by_default():
    first, second = generate_mnemonic(), generate_mnemonic()

    assert len(first.split()) == 24
    assert first != second


def test_generate_rejects_a_word_count_outside_bip39():
    with pytest.raises(ValueError, match="12, 15, 18, 21 or 24"):
        generate_mnemonic(13)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "it is empty"),
        ("   \n", "it is empty"),
        ("abandon " * 11, "expected 12, 15, 18, 21 or 24 words, got 11"),
        ("abandon " * 13, "got 13"),
        (
            "abandon " * 6 + "abandn " + "abandon " * 4 + "about",
            "word 7 'abandn' is not in the BIP-39 English list (did you mean 'abandon'?)",
        ),
        ("correct horse battery staple " * 3, "word 3 'battery' is not in the BIP-39 English list"),
        ("abandon " * 12, "checksum mismatch"),
        ("about " + "abandon " * 11, "checksum mismatch"),
    ],
)
def test_invalid_mnemonics_say_why(text, reason):
    with pytest.raises(InvalidMnemonic) as caught:
        validate_mnemonic(text)

    assert reason in str(caught.value)
    assert str(caught.value).startswith("invalid mnemonic: ")
    assert isinstance(caught.value, CryptoError)


def test_invalid_mnemonic_errors_never_quote_the_phrase():
    with pytest.raises(InvalidMnemonic) as caught:
        key_from_mnemonic("abandon " * 12)

    assert "abandon" not in str(caught.value)


def test_non_string_mnemonic_is_rejected():
    with pytest.raises(InvalidMnemonic):
        validate_mnemonic(b"abandon")  # type: ignore[arg-type]


def test_keys_from_mnemonics_sign_cosmos_style_with_low_s():
    key = key_from_mnemonic(ABANDON)
    msg = b"sign bytes"

    sig = key.sign(msg)

    assert len(sig) == 64 and len(key.public_key) == 33
    s = int.from_bytes(sig[32:], "big")
    assert s <= SECP256K1_ORDER // 2
    assert secp256k1.verify(key.public_key, msg, sig)
    high_s = sig[:32] + (SECP256K1_ORDER - s).to_bytes(32, "big")
    assert not secp256k1.verify(key.public_key, msg, high_s)
    assert not secp256k1.verify(key.public_key, b"other bytes", sig)
