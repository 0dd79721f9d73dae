"""The PoC transformer and the PoC function on CPU: the reference implementation of SPEC.md.

`PocWeights.generate` derives every tensor from the block hash; `PocModel.distances` maps
(public key, nonces) to distances. The forward pass keeps the spec's rounding points literally
(bfloat16 matrix inputs and outputs, float32 norms, softmax, RoPE and residual stream, float32
logits, float64 distance), so its answers are what the Triton path and any other implementation
are compared with. Pure: no I/O, no clock, no randomness except the Philox streams of `rng`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from chain.types.poc import PocParams
from mlnode.pow import rng

BF16 = torch.bfloat16
F32 = torch.float32


def tensor_shapes(p: PocParams) -> dict[str, tuple[int, ...]]:
    """Every named tensor of the PoC function and its shape, in generation order (SPEC.md 4.1)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(p.n_layers):
        pre = f"layers.{i}."
        shapes[pre + "attention_norm.weight"] = (p.dim,)
        for w in ("wq", "wk", "wv", "wo"):
            shapes[pre + f"attention.{w}.weight"] = (p.dim, p.dim)
        shapes[pre + "ffn_norm.weight"] = (p.dim,)
        shapes[pre + "feed_forward.w1.weight"] = (p.ffn_dim, p.dim)
        shapes[pre + "feed_forward.w3.weight"] = (p.ffn_dim, p.dim)
        shapes[pre + "feed_forward.w2.weight"] = (p.dim, p.ffn_dim)
    shapes["norm.weight"] = (p.dim,)
    shapes["output.weight"] = (p.vocab, p.dim)
    return shapes


def tensor_scale(shape: tuple[int, ...]) -> float:
    """Scale of a matrix: sqrt(3 / fan_in) as float32, so its entries have variance 1 / fan_in."""
    return float(np.float32(math.sqrt(3.0 / shape[-1])))


def make_tensor(block_hash: bytes, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """One named weight, bfloat16 (SPEC.md 4.1): matrices u * scale, norm weights 1 + u / 2."""
    count = math.prod(shape)
    u = rng.uniform(rng.tensor_u32(rng.tensor_stream(block_hash, name), count))
    if len(shape) == 1:
        v = np.float32(1.0) + u * np.float32(0.5)
    else:
        v = u * np.float32(tensor_scale(shape))
    return torch.from_numpy(v.reshape(shape)).to(BF16)


def make_target(block_hash: bytes, vocab: int) -> np.ndarray:
    """The target unit vector, float64 (SPEC.md 4.3)."""
    words = rng.tensor_u32(rng.tensor_stream(block_hash, "target"), vocab)
    g = rng.uniform(words).astype(np.float64)
    return g / np.linalg.norm(g)


def make_inputs(block_hash: bytes, public_key: bytes, nonces, p: PocParams) -> torch.Tensor:
    """Per-nonce input embeddings [B, seq_len, dim], bfloat16 (SPEC.md 4.2)."""
    nonces = np.asarray(nonces, dtype=np.uint64)
    words = rng.nonce_u32(rng.input_stream(block_hash, public_key), nonces, p.seq_len * p.dim)
    v = rng.uniform(words) * np.float32(math.sqrt(3.0))
    return torch.from_numpy(v.reshape(len(nonces), p.seq_len, p.dim)).to(BF16)


def make_permutations(block_hash: bytes, public_key: bytes, nonces, vocab: int) -> np.ndarray:
    """Per-nonce permutations of the vocabulary [B, vocab], int64 (SPEC.md 4.4).

    pi = stable argsort of `vocab` uint32 keys: ascending key, ties by index.
    """
    nonces = np.asarray(nonces, dtype=np.uint64)
    keys = rng.nonce_u32(rng.permutation_stream(block_hash, public_key), nonces, vocab)
    return np.argsort(keys, axis=-1, kind="stable")


def rope_tables(p: PocParams) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [seq_len, head_dim / 2], computed in float64 and rounded to float32."""
    half = p.head_dim // 2
    freqs = p.rope_theta ** (-2.0 * np.arange(half, dtype=np.float64) / p.head_dim)
    angles = np.arange(p.seq_len, dtype=np.float64)[:, None] * freqs[None, :]
    return (torch.from_numpy(np.cos(angles).astype(np.float32)),
            torch.from_numpy(np.sin(angles).astype(np.float32)))


@dataclass(frozen=True)
class Layer:
    attention_norm: torch.Tensor   # [d] float32
    wqkv: torch.Tensor             # [3d, d] bfloat16: wq, wk, wv stacked by rows
    wo: torch.Tensor               # [d, d]
    ffn_norm: torch.Tensor         # [d] float32
    w13: torch.Tensor              # [2f, d]: w1, w3 stacked by rows
    w2: torch.Tensor               # [d, f]


@dataclass(frozen=True)
class PocWeights:
    params: PocParams
    block_hash: bytes
    layers: tuple[Layer, ...]
    norm: torch.Tensor             # [d] float32
    output: torch.Tensor           # [V, d] float32 holding bfloat16 values
    target: np.ndarray             # [V] float64 unit vector
    cos: torch.Tensor
    sin: torch.Tensor

    @classmethod
    def generate(cls, params: PocParams, block_hash: bytes) -> PocWeights:
        t = {name: make_tensor(block_hash, name, shape)
             for name, shape in tensor_shapes(params).items()}
        layers = []
        for i in range(params.n_layers):
            pre = f"layers.{i}."
            layers.append(Layer(
                attention_norm=t[pre + "attention_norm.weight"].float(),
                wqkv=torch.cat([t[pre + f"attention.{w}.weight"] for w in ("wq", "wk", "wv")]),
                wo=t[pre + "attention.wo.weight"],
                ffn_norm=t[pre + "ffn_norm.weight"].float(),
                w13=torch.cat([t[pre + "feed_forward.w1.weight"],
                               t[pre + "feed_forward.w3.weight"]]),
                w2=t[pre + "feed_forward.w2.weight"],
            ))
        cos, sin = rope_tables(params)
        return cls(params, block_hash, tuple(layers), t["norm.weight"].float(),
                   t["output.weight"].float(), make_target(block_hash, params.vocab), cos, sin)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """float32 x -> bfloat16 x * rsqrt(mean(x^2) + eps) * weight."""
    return (x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps) * weight).to(BF16)


def add_rms_norm(h: torch.Tensor, delta: torch.Tensor, weight: torch.Tensor,
                 eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual step: h + float32(delta) (float32), and its RMSNorm (bfloat16)."""
    h = h + delta.float()
    return h, rms_norm(h, weight, eps)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved (even, odd) pairs of bfloat16 x [B, s, H, hd] in float32 -> bfloat16."""
    x = x.float().unflatten(-1, (-1, 2))
    x0, x1 = x[..., 0], x[..., 1]
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2).to(BF16)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """q [B, sq, H, hd], k and v [B, s, H, hd] bfloat16 -> [B, sq, H*hd] bfloat16.

    Scores accumulate in float32 from bfloat16 products; softmax in float32; probabilities are
    rounded to bfloat16 before the weighted sum, which rounds to bfloat16.
    """
    hd = q.shape[-1]
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))       # [B, H, s, hd]
    scores = (q.float() @ k.float().transpose(-1, -2)) * np.float32(1.0 / math.sqrt(hd))
    if causal:
        s = scores.shape[-1]
        mask = torch.ones(s, s, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1).to(BF16)
    out = (probs.float() @ v.float()).to(BF16)             # float32 accumulation, one rounding
    return out.transpose(1, 2).flatten(2)


def swiglu(gu: torch.Tensor) -> torch.Tensor:
    """bfloat16 [.., 2f] holding (w1 x, w3 x) -> bfloat16 silu(w1 x) * w3 x, in float32."""
    f = gu.shape[-1] // 2
    return (torch.nn.functional.silu(gu[..., :f].float()) * gu[..., f:].float()).to(BF16)


class Ops(NamedTuple):
    """The elementwise and attention steps of the forward pass; matrix products stay eager."""

    rms_norm: Callable
    add_rms_norm: Callable
    rope: Callable
    attention: Callable
    swiglu: Callable


EAGER = Ops(rms_norm, add_rms_norm, rope, attention, swiglu)


@functools.cache
def compiled_ops() -> Ops:
    """The same steps fused by torch.compile (Inductor's vectorised C++ on CPU).

    Each step is compiled alone, so its rounding points are the eager ones; only transcendental
    functions (exp, rsqrt) may differ in the last float32 bit, which flips a bfloat16 rounding
    once in ~1e5 elements (measured by `gonka bench poc`). The products stay eager: torch's bf16
    GEMM already runs near the machine's matmul rate.
    """
    def c(fn: Callable) -> Callable:
        return torch.compile(fn, dynamic=False)
    return Ops(c(rms_norm), c(add_rms_norm), c(rope), c(attention), c(swiglu))


def forward(w: PocWeights, x: torch.Tensor, ops: Ops = EAGER) -> torch.Tensor:
    """bfloat16 inputs [B, s, d] -> float32 logits of the last position [B, V] (SPEC.md 5)."""
    p = w.params
    B, s, d = x.shape
    H, hd = p.n_heads, p.head_dim
    h = x.float()
    a = ops.rms_norm(h, w.layers[0].attention_norm, p.norm_eps)
    for i, layer in enumerate(w.layers):
        last = i == len(w.layers) - 1
        qkv = (a @ layer.wqkv.T).view(B, s, 3, H, hd)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        k = ops.rope(k, w.cos, w.sin)
        if last:
            q = ops.rope(q[:, -1:], w.cos[-1:], w.sin[-1:])
            h = h[:, -1:]
        else:
            q = ops.rope(q, w.cos, w.sin)
        o = ops.attention(q, k, v, not last) @ layer.wo.T
        h, a = ops.add_rms_norm(h, o, layer.ffn_norm, p.norm_eps)
        f = ops.swiglu(a @ layer.w13.T) @ layer.w2.T
        nxt = w.layers[i + 1].attention_norm if not last else w.norm
        h, a = ops.add_rms_norm(h, f, nxt, p.norm_eps)
    return a[:, -1].float() @ w.output.T


def distances_from_logits(logits: np.ndarray, permutations: np.ndarray,
                          target: np.ndarray) -> np.ndarray:
    """||z / ||z|| - t|| in float64 with z = logits[pi] (SPEC.md 5.4); +inf for a zero output."""
    z = np.take_along_axis(np.asarray(logits, dtype=np.float64), permutations, axis=-1)
    norm = np.linalg.norm(z, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.linalg.norm(z / norm - target, axis=-1)
    return np.where(norm[:, 0] > 0, d, np.inf)


class PocModel:
    """The PoC function for one block hash: distances for (public key, nonces).

    `ops=EAGER` is the reference; `ops=compiled_ops()` the fast CPU path. Nonces run in batches of
    `batch_size`; a short last batch is padded with copies of its last nonce, so every forward pass
    has one shape (one compilation) and answers do not depend on how nonces were grouped.
    """

    def __init__(self, weights: PocWeights, *, ops: Ops = EAGER, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.weights = weights
        self.params = weights.params
        self.ops = ops
        self.batch_size = batch_size

    @classmethod
    def build(cls, params: PocParams, block_hash: bytes, **kw) -> PocModel:
        return cls(PocWeights.generate(params, block_hash), **kw)

    def logits(self, public_key: bytes, nonces) -> torch.Tensor:
        """float32 logits [len(nonces), V] of the last position."""
        nonces = np.asarray(nonces, dtype=np.uint64).reshape(-1)
        out = []
        with torch.inference_mode():
            for start in range(0, len(nonces), self.batch_size):
                chunk = nonces[start:start + self.batch_size]
                pad = self.batch_size - len(chunk)
                if pad:
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad)])
                x = make_inputs(self.weights.block_hash, public_key, chunk, self.params)
                out.append(forward(self.weights, x, self.ops)[: self.batch_size - pad])
        if not out:
            return torch.zeros(0, self.params.vocab)
        return torch.cat(out)

    def distances(self, public_key: bytes, nonces) -> np.ndarray:
        nonces = np.asarray(nonces, dtype=np.uint64).reshape(-1)
        if len(nonces) == 0:
            return np.zeros(0)
        logits = self.logits(public_key, nonces).numpy()
        perms = make_permutations(self.weights.block_hash, public_key, nonces, self.params.vocab)
        return distances_from_logits(logits, perms, self.weights.target)
