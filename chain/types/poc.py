"""Wire types of Proof of Work 2.0: the PoC function's parameters and the ML node's batches.

`PocParams` is what the chain fixes for an epoch (the shape of the random transformer and r_target);
`mlnode/pow/SPEC.md` defines the function those parameters select. `ProofBatch` and
`ValidatedBatch` are the ML node's callback bodies to its API node. Shared here because the chain,
the API node and the ML node all read them; this module holds types and their checks only.
"""

from __future__ import annotations

import math
import struct
from typing import Annotated

import msgspec
from msgspec import Meta

# Nonces are unsigned 63-bit integers: they fit JSON readers that use int64 and the RNG counter.
MAX_NONCE = 2**63 - 1
Nonce = Annotated[int, Meta(ge=0, le=MAX_NONCE)]
# Lower-case hex of a 32-byte block hash and of a 33-byte compressed secp256k1 key.
BlockHashHex = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
PubKeyHex = Annotated[str, Meta(pattern=r"^0[23][0-9a-f]{64}$")]
# A distance on the unit sphere lies in [0, 2]; +inf marks a degenerate (all-zero) output.
Distance = Annotated[float, Meta(ge=0.0)]
# The network's default: P(valid) is about 0.05 for an isotropic output of ~8192 dimensions.
DEFAULT_R_TARGET = 1.4013564660458173
DEFAULT_DIST_TOLERANCE = 1e-4
# One-sided binomial fraud test (SPEC.md section 7): honest mismatch rate and p-value threshold.
DEFAULT_MISMATCH_RATE = 5e-4
DEFAULT_FRAUD_THRESHOLD = 1e-7
MAX_BATCH_NONCES = 1_000_000


def poc_leaf(nonce: int, distance: float) -> bytes:
    """The Merkle leaf of one valid nonce (`MsgPocCommit.root`): 34 bytes,
    `b"gonka/poc-leaf/v1\\0" || u64be(nonce) || IEEE-754 binary64be(distance)`.

    The leaves of a list differ only after the tag and the nonce is big-endian, so sorting leaves
    as bytes sorts them by nonce. Raises ValueError for a nonce outside [0, MAX_NONCE] and for a
    distance that is not finite and >= 0: +inf marks a degenerate output, never a valid nonce, so
    it has no leaf. -0.0 is written as +0.0, so equal distances always give equal leaves.
    """
    if type(nonce) is not int or not 0 <= nonce <= MAX_NONCE:
        raise ValueError(f"nonce {nonce!r} is not an integer in [0, 2**63 - 1]")
    if type(distance) not in (float, int) or not math.isfinite(distance) or distance < 0:
        raise ValueError(f"distance {distance!r} is not a finite number >= 0")
    return b"gonka/poc-leaf/v1\x00" + struct.pack(">Qd", nonce, float(distance) + 0.0)


class PocParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Shape of the PoC transformer and the validity radius; fixed by the chain per epoch."""

    dim: Annotated[int, Meta(ge=8, le=65536)]
    n_layers: Annotated[int, Meta(ge=1, le=1024)]
    n_heads: Annotated[int, Meta(ge=1, le=1024)]
    ffn_dim: Annotated[int, Meta(ge=1, le=1 << 20)]
    vocab: Annotated[int, Meta(ge=2, le=1 << 20)]
    seq_len: Annotated[int, Meta(ge=1, le=8192)]
    rope_theta: Annotated[float, Meta(gt=0.0)] = 10000.0
    norm_eps: Annotated[float, Meta(gt=0.0, lt=1.0)] = 1e-5
    r_target: Annotated[float, Meta(gt=0.0, le=2.0)] = DEFAULT_R_TARGET
    # A validator counts a nonce as failed only when its recomputed distance exceeds
    # r_target + dist_tolerance: conforming implementations differ by ~5e-5 (SPEC.md section 7).
    dist_tolerance: Annotated[float, Meta(ge=0.0, le=0.1)] = DEFAULT_DIST_TOLERANCE

    def __post_init__(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not a multiple of n_heads {self.n_heads}")
        if (self.dim // self.n_heads) % 2:
            raise ValueError(f"head_dim {self.dim // self.n_heads} must be even (RoPE pairs)")
        if not all(math.isfinite(v) for v in (self.rope_theta, self.r_target,
                                                 self.dist_tolerance)):
            raise ValueError("rope_theta, r_target and dist_tolerance must be finite")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def matmul_flops_per_nonce(self) -> int:
        """FLOPs of the matrix products one nonce needs (SPEC.md section 6), 2 per multiply-add.

        Every layer runs on all seq_len positions except the last layer, whose attention output,
        residual and FFN are needed at the last position only; logits only at the last position.
        """
        d, f, s, h, hd = self.dim, self.ffn_dim, self.seq_len, self.n_heads, self.head_dim
        # multiply-adds: projections, the full s x s score and weighted-sum products, the FFN
        full = s * (4 * d * d + 3 * d * f) + 2 * h * s * s * hd
        last = s * 2 * d * d + d * d + 2 * h * s * hd + d * d + 3 * d * f
        return 2 * ((self.n_layers - 1) * full + last + d * self.vocab)


# Parameter sets. TEST is for unit tests and the committed vectors (fast in Triton's interpreter);
# SMALL is the CPU benchmark and devnet set (FFN-heavy like MAINNET); MAINNET is the GPU set.
TEST_PARAMS = PocParams(dim=64, n_layers=2, n_heads=2, ffn_dim=256, vocab=512, seq_len=8,
                        dist_tolerance=5e-4)
SMALL_PARAMS = PocParams(dim=256, n_layers=4, n_heads=8, ffn_dim=8192, vocab=8196, seq_len=32)
MAINNET_PARAMS = PocParams(dim=1792, n_layers=64, n_heads=28, ffn_dim=49152, vocab=8196,
                           seq_len=256)
PARAM_SETS = {"test": TEST_PARAMS, "small": SMALL_PARAMS, "mainnet": MAINNET_PARAMS}


class ProofBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Nonces a host found (generation) or claims (validation), with their distances.

    Same shape as the reference ML node's callback body; `node_id` is the ML node's index among its
    participant's nodes.
    """

    public_key: PubKeyHex
    block_hash: BlockHashHex
    block_height: Annotated[int, Meta(ge=0)]
    nonces: Annotated[list[Nonce], Meta(max_length=MAX_BATCH_NONCES)]
    dist: Annotated[list[Distance], Meta(max_length=MAX_BATCH_NONCES)]
    node_id: Annotated[int, Meta(ge=0)] = 0

    def __post_init__(self) -> None:
        if len(self.nonces) != len(self.dist):
            raise ValueError(f"{len(self.nonces)} nonces but {len(self.dist)} distances")


class ValidatedBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The verdict on a `ProofBatch`: recomputed distances, counts and the binomial test."""

    public_key: PubKeyHex
    block_hash: BlockHashHex
    block_height: Annotated[int, Meta(ge=0)]
    nonces: list[Nonce]
    dist: list[float]
    received_dist: list[float]
    node_id: int
    r_target: float
    fraud_threshold: float
    mismatch_rate: float
    n_checked: int
    n_invalid: int
    n_duplicates: int
    probability_honest: float
    fraud_detected: bool
    # A recomputed distance up to r_target + dist_tolerance passed (SPEC.md section 7).
    dist_tolerance: float = 0.0


# A callback base URL; the ML node appends "/generated" or "/validated".
CallbackUrl = Annotated[str, Meta(pattern=r"^https?://\S+$", max_length=2048)]


class PowInitRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """API node -> ML node: the PoC session to run (POST /api/v1/pow/init/generate|validate).

    The model is selected by (params, block_hash); the inputs by public_key. This node tries the
    nonces node_id, node_id + node_count, ... (`mlnode.pow.nonces`), POSTs the valid ones to
    `{url}/generated` and validation verdicts to `{url}/validated` (no callbacks without `url`).
    `batch_size` overrides the ML node's own choice (from free memory).
    """

    block_hash: BlockHashHex
    block_height: Annotated[int, Meta(ge=0)]
    public_key: PubKeyHex
    node_id: Annotated[int, Meta(ge=0)]
    node_count: Annotated[int, Meta(ge=1, le=1 << 20)]
    params: PocParams
    url: CallbackUrl | None = None
    fraud_threshold: Annotated[float, Meta(gt=0.0, le=1.0)] = DEFAULT_FRAUD_THRESHOLD
    mismatch_rate: Annotated[float, Meta(ge=0.0, lt=1.0)] = DEFAULT_MISMATCH_RATE
    batch_size: Annotated[int, Meta(ge=1, le=MAX_BATCH_NONCES)] | None = None

    def __post_init__(self) -> None:
        if self.node_id >= self.node_count:
            raise ValueError(f"node_id {self.node_id} must be below node_count {self.node_count}")
