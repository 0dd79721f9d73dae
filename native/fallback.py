"""Pure-Python backend of `native`: coincurve, PyNaCl and the `blake3` package.

It answers exactly as the compiled `native._native` does, on every input, and is what runs when
the extension is not built. It is also the baseline the benchmarks compare against: one library
call per signature and one `blake3` call per tree node. It must never raise for a bad signature,
key or message: those verify as `False`.
"""

from __future__ import annotations

import hashlib

import blake3 as _blake3
import nacl.bindings
import nacl.exceptions
from coincurve.context import GLOBAL_CONTEXT
from coincurve.ecdsa import ffi, lib

from native.merkle_spec import EMPTY_ROOT, LEAF_KEY, NODE_KEY, Proof


def _as_bytes(x) -> bytes:
    # Only bytes-like objects, as in the extension: bytes(5) would make five zero bytes.
    return x if type(x) is bytes else bytes(memoryview(x))


def _check_lengths(pubkeys: list, msgs: list, sigs: list) -> None:
    if not (len(pubkeys) == len(msgs) == len(sigs)):
        raise ValueError(
            f"pubkeys, msgs and sigs must have the same length, "
            f"got {len(pubkeys)}, {len(msgs)} and {len(sigs)}"
        )


def _verify_secp256k1_one(pubkey, msg, sig) -> bool:
    pubkey, msg, sig = _as_bytes(pubkey), _as_bytes(msg), _as_bytes(sig)
    if len(pubkey) != 33 or len(sig) != 64:
        return False
    ctx = GLOBAL_CONTEXT.ctx
    pk = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ec_pubkey_parse(ctx, pk, pubkey, 33):
        return False
    s = ffi.new("secp256k1_ecdsa_signature *")
    if not lib.secp256k1_ecdsa_signature_parse_compact(ctx, s, sig):
        return False
    digest = hashlib.sha256(msg).digest()
    # libsecp256k1 rejects signatures whose s is in the upper half of the order (low-S rule).
    return lib.secp256k1_ecdsa_verify(ctx, s, digest, pk) == 1


def _verify_ed25519_one(pubkey, msg, sig) -> bool:
    pubkey, msg, sig = _as_bytes(pubkey), _as_bytes(msg), _as_bytes(sig)
    if len(pubkey) != 32 or len(sig) != 64:
        return False
    try:
        nacl.bindings.crypto_sign_open(sig + msg, pubkey)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


def verify_batch_secp256k1(pubkeys, msgs, sigs) -> list[bool]:
    pubkeys, msgs, sigs = list(pubkeys), list(msgs), list(sigs)
    _check_lengths(pubkeys, msgs, sigs)
    return [_verify_secp256k1_one(p, m, s) for p, m, s in zip(pubkeys, msgs, sigs, strict=True)]


def verify_batch_ed25519(pubkeys, msgs, sigs) -> list[bool]:
    pubkeys, msgs, sigs = list(pubkeys), list(msgs), list(sigs)
    _check_lengths(pubkeys, msgs, sigs)
    return [_verify_ed25519_one(p, m, s) for p, m, s in zip(pubkeys, msgs, sigs, strict=True)]


def blake3(data, key: bytes | None = None) -> bytes:
    data = _as_bytes(data)
    if key is None:
        return _blake3.blake3(data).digest()
    key = _as_bytes(key)
    if len(key) != 32:
        raise ValueError(f"a BLAKE3 key is 32 bytes, got {len(key)}")
    return _blake3.blake3(data, key=key).digest()


def leaf_hash(leaf) -> bytes:
    return _blake3.blake3(_as_bytes(leaf), key=LEAF_KEY).digest()


def node_hash(left, right) -> bytes:
    left, right = _as_bytes(left), _as_bytes(right)
    if len(left) != 32 or len(right) != 32:
        raise ValueError("Merkle node children are 32-byte hashes")
    return _blake3.blake3(left + right, key=NODE_KEY).digest()


def _next_level(level: list[bytes]) -> list[bytes]:
    up = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) & 1:
        up.append(level[-1])
    return up


def merkle_root(leaves) -> bytes:
    level = [leaf_hash(x) for x in leaves]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def merkle_proof(leaves, index: int) -> Proof:
    level = [leaf_hash(x) for x in leaves]
    count = len(level)
    if not 0 <= index < count:
        raise IndexError(f"leaf index {index} out of range for {count} leaves")
    siblings = []
    i = index
    while len(level) > 1:
        if i & 1:
            siblings.append(level[i - 1])
        elif i + 1 < len(level):
            siblings.append(level[i + 1])
        level = _next_level(level)
        i >>= 1
    return Proof(index=index, count=count, siblings=tuple(siblings))
