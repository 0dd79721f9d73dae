"""`gonka bench poc`: nonces checked per second by our PoC path against a straightforward approach.

Baseline (the way a first implementation would do it, as the reference ML node does): each
nonce's input drawn on the CPU with numpy's PCG64 one nonce at a time, a per-nonce numpy
permutation, and a plain float32 torch forward over the whole sequence with logits for every
position. Ours: Philox inputs for the whole batch at once and the bfloat16 forward of SPEC.md with
its elementwise steps compiled (`compiled_ops`), last-position-only work in the last layer. Same
model shape, same weights (as float32 for the baseline), same process, same thread count.

Also printed: the forward's achieved FLOP rate against this machine's bfloat16 dense-matmul rate on
the forward's own GEMM shapes, and the mismatch rate between implementations (reference eager vs
compiled, bfloat16 vs float32) that the binomial fraud test's mismatch parameter must exceed.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable

# Without a GPU the Triton comparison runs under Triton's interpreter, which must be chosen before
# triton is first imported (torch.compile imports it).
if not os.path.exists("/proc/driver/nvidia"):
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from chain.types.poc import DEFAULT_MISMATCH_RATE, SMALL_PARAMS, PocParams  # noqa: E402
from mlnode.pow import model as M  # noqa: E402
from tools.bench import best_of  # noqa: E402

PUBLIC_KEY = bytes.fromhex("02" + "11" * 32)
BLOCK_HASH = hashlib.sha256(b"gonka bench poc").digest()


# --- baseline ------------------------------------------------------------------------------------

def _pcg_input(nonce: int, p: PocParams) -> np.ndarray:
    seed = np.frombuffer(hashlib.sha256(f"bench_{nonce}".encode()).digest(), dtype=np.uint32)
    return np.random.default_rng(np.random.SeedSequence(seed)).standard_normal((p.seq_len, p.dim))


def _pcg_permutation(nonce: int, p: PocParams) -> np.ndarray:
    seed = np.frombuffer(hashlib.sha256(f"bench_{nonce}_perm".encode()).digest(), np.uint32)
    return np.random.default_rng(np.random.SeedSequence(seed)).permutation(p.vocab)


def fp32_forward(w: M.PocWeights, x: torch.Tensor, all_positions: bool = True) -> torch.Tensor:
    """Plain float32 forward, no rounding to bfloat16, full attention in every layer."""
    p = w.params
    B, s, d = x.shape
    H, hd = p.n_heads, p.head_dim

    def norm(t: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return t * torch.rsqrt(t.square().mean(-1, keepdim=True) + p.norm_eps) * weight

    def rope(t: torch.Tensor) -> torch.Tensor:
        t = t.unflatten(-1, (-1, 2))
        c, sn = w.cos[:, None, :], w.sin[:, None, :]
        t0, t1 = t[..., 0], t[..., 1]
        return torch.stack((t0 * c - t1 * sn, t0 * sn + t1 * c), -1).flatten(-2)

    mask = torch.ones(s, s, dtype=torch.bool).triu(1)
    h = x.float()
    for layer in w.layers:
        qkv = (norm(h, layer.attention_norm) @ layer.wqkv.float().T).view(B, s, 3, H, hd)
        q, k, v = (rope(qkv[:, :, 0]), rope(qkv[:, :, 1]), qkv[:, :, 2])
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        attn = torch.softmax(scores.masked_fill(mask, float("-inf")), -1) @ v
        h = h + attn.transpose(1, 2).flatten(2) @ layer.wo.float().T
        gu = norm(h, layer.ffn_norm) @ layer.w13.float().T
        h = h + (torch.nn.functional.silu(gu[..., :p.ffn_dim]) * gu[..., p.ffn_dim:]) \
            @ layer.w2.float().T
    h = h if all_positions else h[:, -1:]
    return (norm(h, w.norm) @ w.output.T)[:, -1]


def baseline_rate(w: M.PocWeights, nonces: int, batch: int) -> float:
    p = w.params
    start = time.perf_counter()
    with torch.inference_mode():
        for first in range(0, nonces, batch):
            ids = range(first, min(first + batch, nonces))
            x = torch.from_numpy(np.stack([_pcg_input(n, p) for n in ids])).float()
            perms = np.stack([_pcg_permutation(n, p) for n in ids])
            M.distances_from_logits(fp32_forward(w, x).numpy(), perms, w.target)
    return nonces / (time.perf_counter() - start)


# --- ours ----------------------------------------------------------------------------------------

def ours_rate(model: M.PocModel, nonces: int) -> float:
    model.distances(PUBLIC_KEY, np.arange(model.batch_size))       # compile and warm up
    start = time.perf_counter()
    model.distances(PUBLIC_KEY, np.arange(nonces))
    return nonces / (time.perf_counter() - start)


def flop_rates(model: M.PocModel, repeat: int = 3) -> tuple[float, float]:
    """(forward FLOP/s, dense bf16 matmul FLOP/s on the forward's GEMM shapes)."""
    w, p, B = model.weights, model.params, model.batch_size
    x = M.make_inputs(BLOCK_HASH, PUBLIC_KEY, np.arange(B), p)
    with torch.inference_mode():
        M.forward(w, x, model.ops)
        fwd, _ = best_of(repeat, lambda: M.forward(w, x, model.ops))
        rows, last = B * p.seq_len, B
        layer = w.layers[0]
        shapes = [(rows, layer.wqkv), (rows, layer.wo), (rows, layer.w13), (rows, layer.w2)]
        last_shapes = [(rows, layer.wqkv), (last, layer.wo), (last, layer.w13), (last, layer.w2)]
        inputs = {(n, m.shape[1]): torch.ones(n, m.shape[1], dtype=M.BF16)
                  for n, m in shapes + last_shapes}

        gemms = shapes * (p.n_layers - 1) + last_shapes

        def gemm_only() -> None:
            for n, m in gemms:
                torch.mm(inputs[n, m.shape[1]], m.T)
        gemm_only()
        mm, _ = best_of(repeat, gemm_only)
    flops = p.matmul_flops_per_nonce() * B
    # the timed GEMMs are the bf16 projections only (not attention's small products, nor the
    # fp32 logits), so their rate is measured on their own FLOPs
    gemm_flops = sum(2 * n * m.shape[0] * m.shape[1] for n, m in gemms)
    return flops / fwd, gemm_flops / mm


# --- mismatch ------------------------------------------------------------------------------------

def mismatch(a: np.ndarray, b: np.ndarray, p: PocParams) -> dict[str, float]:
    """How often validity differs between two implementations' distances for the same nonces.

    `flips` counts nonces valid under `a` whose `b` distance fails validation (> r_target +
    dist_tolerance), over the nonces valid under `a`. Too few nonces sit near r_target to count
    rare flips directly, so `estimated` also models it: density of distances at r_target times
    E[(delta - tolerance)+] over P(valid), from the observed deltas.
    """
    r, tol = p.r_target, p.dist_tolerance
    delta = b - a
    valid = a < r
    mu, sd = float(a.mean()), float(a.std())
    z = (r - mu) / sd
    density = math.exp(-z * z / 2) / (sd * math.sqrt(2 * math.pi))
    p_valid = max(float(valid.mean()), 1e-12)
    out = {"delta_mean": float(np.abs(delta).mean()), "delta_max": float(np.abs(delta).max()),
           "valid": int(valid.sum())}
    for name, t in (("no_tolerance", 0.0), ("tolerance", tol)):
        excess = np.clip(np.abs(delta) - t, 0, None)
        out[f"flips_{name}"] = int((valid & (b > r + t)).sum())
        out[f"estimated_{name}"] = density * float(excess.mean()) / 2 / p_valid
    out["margin"] = density * tol / p_valid   # extra weight a cheater gains inside the tolerance
    return out


def triton_distances(weights: M.PocWeights, ids: np.ndarray) -> tuple[np.ndarray, str]:
    """The Triton path's distances: compiled on a GPU, else under Triton's interpreter (slow)."""
    from kernels.forward import TritonPocModel
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = TritonPocModel.build(weights.params, weights.block_hash, device=device)
    where = "GPU" if device == "cuda" else "interpreter"
    return model.distances(PUBLIC_KEY, ids), where


def run(params: PocParams = SMALL_PARAMS, nonces: int = 512, baseline_nonces: int = 128,
        batch: int = 64, mismatch_nonces: int = 512, triton_nonces: int = 32,
        threads: int | None = None,
        print_fn: Callable[[str], None] = print) -> dict[str, float]:
    if threads:
        torch.set_num_threads(threads)
    p = params
    print_fn(f"cores: {os.cpu_count()}  torch threads: {torch.get_num_threads()}  params: {p}")
    model = M.PocModel.build(p, BLOCK_HASH, ops=M.compiled_ops(), batch_size=batch)
    flops_per_nonce = p.matmul_flops_per_nonce()
    base = baseline_rate(model.weights, baseline_nonces, batch)
    ours = ours_rate(model, nonces)
    print_fn(f"baseline (PCG64 per nonce, fp32 forward, all logits): {base:9.1f} nonces/s")
    print_fn(f"ours (Philox batch, bf16 forward, compiled steps):     {ours:9.1f} nonces/s"
             f"  ratio {ours / base:5.2f}x")
    fwd, mm = flop_rates(model)
    print_fn(f"forward: {fwd / 1e9:7.1f} GFLOP/s ({flops_per_nonce / 1e9:.3f} GFLOP per nonce);"
             f" bf16 dense matmul, same shapes: {mm / 1e9:7.1f} GFLOP/s;"
             f" forward/matmul {fwd / mm:5.1%}")
    ids = np.arange(10_000, 10_000 + mismatch_nonces)
    reference = M.PocModel(model.weights, batch_size=batch).distances(PUBLIC_KEY, ids)
    fast = model.distances(PUBLIC_KEY, ids)
    x = M.make_inputs(BLOCK_HASH, PUBLIC_KEY, ids, p)
    with torch.inference_mode():
        logits32 = torch.cat([fp32_forward(model.weights, x[i:i + batch])
                              for i in range(0, len(ids), batch)])
    perms = M.make_permutations(BLOCK_HASH, PUBLIC_KEY, ids, p.vocab)
    fp32 = M.distances_from_logits(logits32.numpy(), perms, model.weights.target)
    results = {"baseline": base, "ours": ours, "ratio": ours / base, "forward_flops": fwd,
               "matmul_flops": mm}
    pairs = [("reference eager vs compiled", reference, fast), ("bf16 vs fp32", reference, fp32)]
    if triton_nonces:
        tri, where = triton_distances(model.weights, ids[:triton_nonces])
        pairs.append((f"reference vs Triton ({where})", reference[:triton_nonces], tri))
    for name, ref, other in pairs:
        m = mismatch(ref, other, p)
        print_fn(f"mismatch, {name}: {len(ref)} nonces ({m['valid']} valid),"
                 f" |delta| mean {m['delta_mean']:.2e} max {m['delta_max']:.2e};"
                 f" flips {m['flips_no_tolerance']} / {m['flips_tolerance']} (tolerance"
                 f" {p.dist_tolerance:g}); estimated rate {m['estimated_no_tolerance']:.1e}"
                 f" without, {m['estimated_tolerance']:.1e} with tolerance"
                 f" (parameter {DEFAULT_MISMATCH_RATE:g})")
        results[f"mismatch {name}"] = m["estimated_tolerance"]
    print_fn(f"tolerance margin: a prover may claim ~{mismatch(reference, fast, p)['margin']:.1%}"
             f" more nonces (distances within the tolerance above r_target) unflagged")
    return results
