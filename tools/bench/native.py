"""`gonka bench native`: batch signature checks and Merkle roots, extension vs fallback.

Both backends run on the same inputs in the same process; the fallback is the baseline (one library
call per signature, one `blake3` call per tree node). Answers are compared, so a fast wrong result
cannot pass unnoticed.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass

import coincurve
import nacl.signing

from native import _native, fallback
from tools.bench import best_of


@dataclass
class Figure:
    name: str
    items: int
    native_s: float
    fallback_s: float

    @property
    def ratio(self) -> float:
        return self.fallback_s / self.native_s

    def line(self) -> str:
        return (f"{self.name:<44} {self.items:>9,}  native {self.items / self.native_s:>12,.0f}/s"
                f"  fallback {self.items / self.fallback_s:>12,.0f}/s  ratio {self.ratio:5.2f}x")


def _compare(name: str, repeat: int, function: str, *args) -> Figure:
    """Times `function` of both backends on the same `args`; their answers must agree."""
    native_s, a = best_of(repeat, lambda: getattr(_native, function)(*args))
    fallback_s, b = best_of(repeat, lambda: getattr(fallback, function)(*args))
    if a != b:
        raise AssertionError(f"{name}: the backends disagree")
    return Figure(name, len(args[0]), native_s, fallback_s)


def _secp_batch(n: int, distinct_keys: int, rng: random.Random):
    keys = [coincurve.PrivateKey(rng.randbytes(32)) for _ in range(distinct_keys)]
    pks, msgs, sigs = [], [], []
    for i in range(n):
        k = keys[i % distinct_keys]
        m = rng.randbytes(150)  # about the size of a signed transfer body
        pks.append(k.public_key.format(compressed=True))
        msgs.append(m)
        sigs.append(k.sign_recoverable(m)[:64])
    return pks, msgs, sigs


def _ed_batch(n: int, distinct_keys: int, rng: random.Random):
    keys = [nacl.signing.SigningKey(rng.randbytes(32)) for _ in range(distinct_keys)]
    pks, msgs, sigs = [], [], []
    for i in range(n):
        k = keys[i % distinct_keys]
        m = rng.randbytes(150)
        pks.append(bytes(k.verify_key))
        msgs.append(m)
        sigs.append(k.sign(m).signature)
    return pks, msgs, sigs


def run(signatures: int = 20_000, leaves: int = 1_000_000, repeat: int = 3,
        print_fn: Callable[[str], None] = print) -> list[Figure]:
    rng = random.Random(2026)
    print_fn(f"cores: {os.cpu_count()}  (best of {repeat} runs each; fallback = baseline)")
    figures = []
    for label, distinct in (("all keys distinct", signatures), ("100 signers", 100)):
        batch = _secp_batch(signatures, distinct, rng)
        figures.append(_compare(f"secp256k1 batch verify, {label}", repeat,
                                "verify_batch_secp256k1", *batch))
        print_fn(figures[-1].line())
    batch = _ed_batch(signatures, signatures, rng)
    figures.append(_compare("ed25519 batch verify, all keys distinct", repeat,
                            "verify_batch_ed25519", *batch))
    print_fn(figures[-1].line())
    leaves_data = [rng.randbytes(32) for _ in range(leaves)]
    figures.append(_compare("Merkle root, 32-byte leaves", repeat, "merkle_root", leaves_data))
    print_fn(figures[-1].line())
    return figures
