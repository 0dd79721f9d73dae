"""Philox4x32-10, the counter-based generator every PoC tensor is drawn from (SPEC.md section 3).

Pure numpy, vectorised over counters. The Triton kernels in `kernels/` compute the same integers
on a GPU; `tests/mlnode/test_philox.py` pins this implementation to the Random123 known-answer
vectors. Nothing here holds state: a value is a function of (key, counter) alone, which is what
lets a device generate any slice of any tensor without a host round trip.
"""

from __future__ import annotations

import numpy as np

ROUNDS = 10
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
_MASK = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)


def philox4x32(c0, c1, c2, c3, k0: int, k1: int, rounds: int = ROUNDS):
    """Philox4x32-`rounds` of counters (c0, c1, c2, c3) under key (k0, k1).

    The counters are uint32 arrays (or scalars) of one broadcastable shape; returns four uint32
    arrays.
    """
    x0, x1, x2, x3 = (np.asarray(c, dtype=np.uint64) for c in (c0, c1, c2, c3))
    x0, x1, x2, x3 = np.broadcast_arrays(x0, x1, x2, x3)
    k0 &= 0xFFFFFFFF
    k1 &= 0xFFFFFFFF
    for r in range(rounds):
        if r:
            k0 = (k0 + _W0) & 0xFFFFFFFF
            k1 = (k1 + _W1) & 0xFFFFFFFF
        p0 = x0 * _M0
        p1 = x2 * _M1
        x0, x1, x2, x3 = (
            (p1 >> _SHIFT) ^ x1 ^ np.uint64(k0),
            p1 & _MASK,
            (p0 >> _SHIFT) ^ x3 ^ np.uint64(k1),
            p0 & _MASK,
        )
    return tuple(x.astype(np.uint32) for x in (x0, x1, x2, x3))
