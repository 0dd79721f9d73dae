"""How many nonces one forward pass takes: from free memory and a per-nonce estimate.

The estimate counts the largest live activations of one nonce in the reference forward pass
(`mlnode.pow.model`): inputs and their RNG words, the residual stream, q/k/v and their RoPE
copies, the attention scores, the SwiGLU intermediates, and the logits with their permutation
and float64 distance buffers. Only one layer's activations are alive at a time. The weights are
already allocated when the batch size is chosen, so they are not part of the free memory.
"""

from __future__ import annotations

from pathlib import Path

from chain.types.poc import PocParams

# Only this fraction of free memory is planned for; the estimate is rough and others share it.
USABLE_FRACTION = 0.5
# Without any reading of free memory, a batch this size is small enough for any machine.
FALLBACK_BATCH_SIZE = 64


def bytes_per_nonce(p: PocParams) -> int:
    s, d, f, h, v = p.seq_len, p.dim, p.ffn_dim, p.n_heads, p.vocab
    inputs = s * d * (4 + 4 + 2)                      # uint32 words, float32, bfloat16
    residual = s * d * 4 * 2                          # h and the branch output, float32
    attention = s * 3 * d * 2 + s * 2 * d * 4 * 2     # qkv bf16; q, k float32 RoPE copies
    scores = h * s * s * (4 + 4 + 2)                  # scores, softmax, bf16 probabilities
    ffn = s * 2 * f * 2 + s * f * 4 * 3 + s * f * 2   # w1|w3 out bf16, float32 g, u, silu; act
    head = v * (4 + 4 + 8 + 8 * 3)                    # logits, keys, permutation, float64 z
    return inputs + residual + attention + scores + ffn + head


def free_memory_bytes() -> int | None:
    """Free GPU memory when CUDA is there, else MemAvailable of /proc/meminfo; None if unknown."""
    try:
        import torch
        if torch.cuda.is_available():
            return int(torch.cuda.mem_get_info()[0])
    except (ImportError, RuntimeError):
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def auto_batch_size(params: PocParams, free_bytes: int | None, cap: int) -> int:
    """Nonces per batch for `free_bytes` of free memory, in [1, cap]."""
    if free_bytes is None:
        return max(1, min(cap, FALLBACK_BATCH_SIZE))
    fit = int(free_bytes * USABLE_FRACTION) // bytes_per_nonce(params)
    return max(1, min(cap, fit))
