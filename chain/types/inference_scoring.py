"""The inference-validation score: how closely a replay's logprobs match the executor's.

Shared by the ML node and the API node: the validator's ML node replays the executor's output
tokens through the same model (teacher forcing, mlnode/inference/replay.py) and the validator's
API node compares, position by position, the top-k logprobs the replay computed with the ones
the executor reported, and sends the result as MsgValidation's `similarity_ppm`
(`to_ppm`). It lives with the chain's wire types so that both import one copy (the API
node may not import ML-node internals), like chain/types/poc_fraud.py. A pure function (no I/O,
no clock).

The comparison follows the reference (gonka-mlnode.md 7.4), with one deliberate change: the
reference scored a length mismatch or a token mismatch as similarity 1.0 (a hack until
tokenisation was guaranteed identical). Here both are failures (similarity 0.0 with a reason):
we replay token ids, not text, so they can only differ if the executor lied.

Per position i, from the ORIGINAL top-k the two smallest logprobs m1 <= m2 give the value used for
tokens missing from it, fill = m1 - (m2 - m1). With a single entry the fill is m1 - 100 (the
reference's text reads "m2 = m1 - 100", which would put the fill 100 ABOVE m1, even above 0; we
extrapolate downward, as for two entries). For each token in
the REPLAYED top-k, a = replayed logprob, b = original logprob of that token (or fill), and
|a - b| / (1e-6 + |a| + |b|) / 2 is added to the distance. distance = sum / (max(100, N) * k),
similarity = max(0, 1 - distance). Logprobs are clamped to [-9999, 0] first (vLLM reports masked
tokens as -9999; -inf becomes -9999); NaN is a failure.

This module must never do I/O or depend on vLLM: it is shared by tests, the ML node, the API
node and anyone who wants to recompute a score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

LOGPROB_FLOOR = -9999.0
EPSILON = 1e-6
MIN_NORMALISER_POSITIONS = 100
SINGLE_ENTRY_GAP = 100.0


class TokenLogprob(msgspec.Struct, frozen=True):
    """One candidate token at a position and its logprob."""

    token_id: int
    logprob: float


class PositionLogprobs(msgspec.Struct, frozen=True):
    """One output position: the token that was emitted, its logprob, and the top-k candidates."""

    token_id: int
    logprob: float
    top: list[TokenLogprob] = []


class Score(msgspec.Struct, frozen=True):
    """Similarity in [0, 1] (1 = identical); `reason` says why it is 0 when comparison failed."""

    similarity: float
    reason: str | None
    positions: int


def _clamp(value: float) -> float:
    return min(0.0, max(LOGPROB_FLOOR, value))


def _fill_value(top: dict[int, float]) -> float:
    smallest = sorted(top.values())[:2]
    m1 = smallest[0]
    m2 = smallest[1] if len(smallest) > 1 else m1 + SINGLE_ENTRY_GAP
    return max(LOGPROB_FLOOR, m1 - (m2 - m1))


def _failure(reason: str, positions: int) -> Score:
    return Score(similarity=0.0, reason=reason, positions=positions)


def _has_nan(positions: Sequence[PositionLogprobs]) -> int | None:
    for i, pos in enumerate(positions):
        if math.isnan(pos.logprob) or any(math.isnan(t.logprob) for t in pos.top):
            return i
    return None


def score(original: Sequence[PositionLogprobs], replayed: Sequence[PositionLogprobs]) -> Score:
    """Compare the executor's per-position logprobs (`original`) with the validator's replay.

    Both empty: similarity 1.0 (nothing was claimed, nothing disagrees; whether an empty output
    is acceptable is the caller's business). Different lengths, any different token, NaN
    logprobs, or an original position with no top-k while the replay has one: similarity 0.0.
    """
    n = len(original)
    if n != len(replayed):
        return _failure(f"different length: original {n}, replayed {len(replayed)}", n)
    for i, (o, r) in enumerate(zip(original, replayed, strict=True)):
        if o.token_id != r.token_id:
            return _failure(
                f"different tokens at position {i}: original {o.token_id}, replayed {r.token_id}",
                n,
            )
    for name, side in (("original", original), ("replayed", replayed)):
        bad = _has_nan(side)
        if bad is not None:
            return _failure(f"NaN logprob in {name} at position {bad}", n)
    if n == 0:
        return Score(similarity=1.0, reason=None, positions=0)

    k = max(len(r.top) for r in replayed)
    if k == 0:
        return _failure("replay has no top-k logprobs to compare", n)

    total = 0.0
    for i, (o, r) in enumerate(zip(original, replayed, strict=True)):
        if not r.top:
            continue
        original_top = {t.token_id: _clamp(t.logprob) for t in o.top}
        if not original_top:
            return _failure(f"original has no top-k logprobs at position {i}", n)
        fill = _fill_value(original_top)
        for t in r.top:
            a = _clamp(t.logprob)
            b = original_top.get(t.token_id, fill)
            total += abs(a - b) / (EPSILON + abs(a) + abs(b)) / 2.0
    distance = total / (max(MIN_NORMALISER_POSITIONS, n) * k)
    return Score(similarity=max(0.0, 1.0 - distance), reason=None, positions=n)


PPM = 1_000_000


def to_ppm(similarity: float) -> int:
    """A similarity in [0, 1] as MsgValidation's `similarity_ppm` (floored: a score never rounds
    up across the model's threshold). NaN or anything outside [0, 1] is clamped (NaN -> 0)."""
    if math.isnan(similarity):
        return 0
    return min(PPM, max(0, math.floor(similarity * PPM)))
