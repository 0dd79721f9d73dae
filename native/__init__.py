"""Hot paths shared by the chain and the API node: batch signature checks and BLAKE3 Merkle trees.

Two backends give identical answers: the compiled extension `native._native` (Cython, GIL
released, spread over all cores, linked against the system's libsecp256k1 and libsodium) and the
pure-Python `native.fallback` (coincurve, PyNaCl, the `blake3` package). The extension is used when
it is importable; `GONKA_NATIVE=fallback` forces the fallback and `GONKA_NATIVE=native` makes a
missing extension an import error instead of a silent slowdown. `BACKEND` names the one in use.

Signatures (DESIGN.md section 3):
  * secp256k1: 33-byte compressed public key, 64-byte r||s over SHA-256(message), low-S only.
  * ed25519: 32-byte public key, 64-byte signature (libsodium's rules).
A malformed key or signature verifies as False; only mismatched list lengths raise (ValueError).

Merkle trees: `native/MERKLE.md`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from types import ModuleType

from native import fallback
from native.merkle_spec import EMPTY_ROOT, Proof, verify_proof_with

# OpenMP threads that spin while idle steal the core from the other processes of a node host (a
# chain node, an API node and an ML node share a machine); sleep instead. Read once, when the
# extension loads, and an explicit setting by the operator wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _load() -> tuple[ModuleType, str]:
    wanted = os.environ.get("GONKA_NATIVE", "auto")
    if wanted not in ("auto", "native", "fallback"):
        raise ImportError(f"GONKA_NATIVE must be auto, native or fallback, not {wanted!r}")
    if wanted == "fallback":
        return fallback, "fallback"
    try:
        from native import _native
    except ImportError as e:
        if wanted == "native":
            raise ImportError(
                f"GONKA_NATIVE=native but the compiled extension cannot be imported ({e}); "
                "build it with scripts/bootstrap.sh"
            ) from e
        return fallback, "fallback"
    return _native, "native"


_impl, BACKEND = _load()

verify_batch_secp256k1 = _impl.verify_batch_secp256k1
verify_batch_ed25519 = _impl.verify_batch_ed25519
merkle_root = _impl.merkle_root
merkle_proof = _impl.merkle_proof
leaf_hash = _impl.leaf_hash
node_hash = _impl.node_hash


# Verdicts remembered, oldest first out: a chain node checks the same signatures when a tx
# enters its mempool, when a proposal is built or checked, and when the block runs. A verdict is
# a pure function of (pubkey, message, signature), so remembering one cannot change an answer.
_VERIFIED_MAX = 1 << 16
_verified: OrderedDict[tuple[bytes, bytes, bytes], bool] = OrderedDict()


def verify_many_secp256k1(pubkeys: Sequence[bytes], msgs: Sequence[bytes],
                          sigs: Sequence[bytes]) -> list[bool]:
    """`verify_batch_secp256k1`, with the verdicts of the last 65,536 distinct checks
    remembered: only checks not seen lately go to the native batch."""
    keys = [(bytes(p), bytes(m), bytes(s)) for p, m, s in zip(pubkeys, msgs, sigs, strict=True)]
    out: list[bool] = [False] * len(keys)
    unseen: list[int] = []
    for i, key in enumerate(keys):
        verdict = _verified.get(key)
        if verdict is None:
            unseen.append(i)
            continue
        out[i] = verdict
        try:
            _verified.move_to_end(key)
        except KeyError:  # pushed out meanwhile by another thread: nothing to refresh
            pass
    if unseen:
        verdicts = _impl.verify_batch_secp256k1([keys[i][0] for i in unseen],
                                                [keys[i][1] for i in unseen],
                                                [keys[i][2] for i in unseen])
        for i, verdict in zip(unseen, verdicts, strict=True):
            out[i] = bool(verdict)
            _verified[keys[i]] = out[i]
        while len(_verified) > _VERIFIED_MAX:
            try:
                _verified.popitem(last=False)
            except KeyError:  # emptied meanwhile by another thread
                break
    return out


def verify_secp256k1(pubkey: bytes, msg: bytes, sig: bytes) -> bool:
    """One secp256k1 check (remembered as `verify_many_secp256k1` does)."""
    return verify_many_secp256k1((pubkey,), (msg,), (sig,))[0]


def verify_ed25519(pubkey: bytes, msg: bytes, sig: bytes) -> bool:
    """One ed25519 check (a batch of one)."""
    return _impl.verify_batch_ed25519((pubkey,), (msg,), (sig,))[0]


def verify_proof(root: bytes, leaf: bytes, index: int, count: int, proof: Proof) -> bool:
    """True iff `proof` shows `leaf` at `index` in the `count`-leaf tree with `root`."""
    return verify_proof_with(_impl.leaf_hash, _impl.node_hash, root, leaf, index, count, proof)


__all__ = [
    "BACKEND",
    "EMPTY_ROOT",
    "Proof",
    "fallback",
    "leaf_hash",
    "merkle_proof",
    "merkle_root",
    "node_hash",
    "verify_batch_ed25519",
    "verify_batch_secp256k1",
    "verify_ed25519",
    "verify_many_secp256k1",
    "verify_proof",
    "verify_secp256k1",
]
