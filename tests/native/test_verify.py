"""Batch signature verification: both backends, the same vectors, the same answers."""

from __future__ import annotations

import random

import coincurve
import nacl.signing
import pytest

import native
from tests.native.conftest import BACKENDS
from tests.native.vectors import ed25519_cases, secp_cases

SECP = secp_cases()
ED = ed25519_cases()


@pytest.mark.parametrize("case", SECP, ids=[c[0] for c in SECP])
def test_secp256k1_vector(backend, case):
    _, pk, msg, sig, expected = case
    assert backend.verify_batch_secp256k1([pk], [msg], [sig]) == [expected]


@pytest.mark.parametrize("case", ED, ids=[c[0] for c in ED])
def test_ed25519_vector(backend, case):
    _, pk, msg, sig, expected = case
    assert backend.verify_batch_ed25519([pk], [msg], [sig]) == [expected]


def _mixed_batch(cases, n, seed):
    rng = random.Random(seed)
    picked = [rng.choice(cases) for _ in range(n)]
    return ([c[1] for c in picked], [c[2] for c in picked], [c[3] for c in picked],
            [c[4] for c in picked])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 5000])
def test_mixed_batches_agree_position_by_position(n):
    # Given batches that mix valid and invalid entries at random positions,
    for name, cases in (("secp256k1", SECP), ("ed25519", ED)):
        pks, msgs, sigs, expected = _mixed_batch(cases, n, seed=n)
        # when both backends check them, each answer is the expected one, in order.
        for b in BACKENDS:
            got = getattr(b, f"verify_batch_{name}")(pks, msgs, sigs)
            assert got == expected, (b.__name__, name)


def test_many_distinct_keys_and_repeated_keys():
    rng = random.Random(9)
    keys = [coincurve.PrivateKey(rng.randbytes(32)) for _ in range(50)]
    pks, msgs, sigs, expected = [], [], [], []
    for i in range(3000):
        k = keys[i % len(keys)] if i % 3 else coincurve.PrivateKey(rng.randbytes(32))
        m = rng.randbytes(rng.randrange(0, 200))
        sig = k.sign_recoverable(m)[:64]
        ok = i % 7 != 0
        if not ok:  # the same key verifying another key's signature must fail
            sig = keys[(i + 1) % len(keys)].sign_recoverable(m)[:64]
        pks.append(k.public_key.format(compressed=True))
        msgs.append(m)
        sigs.append(sig)
        expected.append(ok)
    for b in BACKENDS:
        assert b.verify_batch_secp256k1(pks, msgs, sigs) == expected


def test_bytes_like_inputs_are_accepted_and_others_refused(backend):
    key = nacl.signing.SigningKey(bytes(range(32)))
    sig = key.sign(b"m").signature
    pk = bytes(key.verify_key)
    assert backend.verify_batch_ed25519([bytearray(pk)], [memoryview(b"m")], [sig]) == [True]
    with pytest.raises(TypeError):
        backend.verify_batch_ed25519([pk], [5], [sig])  # bytes(5) would be five zero bytes
    with pytest.raises(TypeError):
        backend.verify_batch_ed25519(["not bytes"], [b"m"], [sig])


def test_mismatched_lengths_raise_value_error(backend):
    with pytest.raises(ValueError, match="same length"):
        backend.verify_batch_secp256k1([b""], [], [b""])
    with pytest.raises(ValueError, match="same length"):
        backend.verify_batch_ed25519([], [b""], [])


def test_single_check_helpers_use_the_loaded_backend():
    _, pk, msg, sig, _ = SECP[0]
    assert native.verify_secp256k1(pk, msg, sig) is True
    assert native.verify_secp256k1(pk, msg + b"x", sig) is False
    _, pk, msg, sig, _ = ED[0]
    assert native.verify_ed25519(pk, msg, sig) is True
    assert native.verify_ed25519(pk, msg, sig[::-1]) is False


def test_remembered_verdicts_are_the_batch_verdicts_and_never_carry_over():
    # Given a mix of valid and invalid checks, asked twice (the second time from memory), and
    # checks that differ from remembered valid ones by one byte of signature or message,
    pks, msgs, sigs, expected = _mixed_batch(SECP, 200, seed=42)
    assert native.verify_many_secp256k1(pks, msgs, sigs) == expected
    assert native.verify_many_secp256k1(pks, msgs, sigs) == expected
    checks = zip(pks, msgs, sigs, strict=True)
    assert [native.verify_secp256k1(p, m, s) for p, m, s in checks] == expected
    valid = [i for i, ok in enumerate(expected) if ok]
    assert valid
    for i in valid:
        bad_sig = sigs[i][:-1] + bytes([sigs[i][-1] ^ 1])
        bad_msg = msgs[i] + b"x"
        # then the altered ones fail, whatever was remembered about the originals.
        assert native.verify_many_secp256k1([pks[i], pks[i]], [msgs[i], bad_msg],
                                            [bad_sig, sigs[i]]) == [False, False]
