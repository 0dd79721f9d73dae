"""Philox4x32-10 on the device: the PoC weights, inputs and permutation keys without a host trip.

Computes the same integers as `mlnode.pow.philox.philox4x32` and the same streams as
`mlnode.pow.rng` (SPEC.md sections 3 and 4): element j of a stream is word j % 4 of Philox block
j // 4; a tensor stream's counter is (block lo, block hi, c2, c3), a nonce stream's is
(block, nonce lo, nonce hi, c2). Only the BLAKE3 key derivation (`rng.tensor_stream`, ...) runs on
the host, once per tensor or per public key. The rounds are written out with `tl.umulhi` rather
than taken from `tl.philox`, so a Triton upgrade cannot change them (with Triton 3.9,
`tl.philox(k0 | k1 << 32, c0, c1, c2, c3)` gives the same words). Results are bit-identical to
`mlnode.pow.model.make_tensor`, `make_inputs` and `rng.nonce_u32`; this module must never round
differently from them.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from chain.types.poc import PocParams
from kernels import numerics
from kernels.numerics import LAUNCH, f32_to_bf16
from mlnode.pow import rng
from mlnode.pow.model import tensor_scale

ROUNDS = tl.constexpr(10)

# Stream element modes (constexpr MODE of the kernels below).
MATRIX = 0    # bfloat16(u * scale)
NORM = 1      # bfloat16(1 + u / 2)
UNIFORM = 2   # float32 u
WORDS = 3     # the raw uint32 word, stored as int64


@triton.jit
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of uint32 counters (c0, c1, c2, c3) under uint32 key (k0, k1)."""
    for _ in tl.static_range(ROUNDS):
        hi0 = tl.umulhi(c0, 0xD2511F53)
        lo0 = c0 * 0xD2511F53
        hi1 = tl.umulhi(c2, 0xCD9E8D57)
        lo1 = c2 * 0xCD9E8D57
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = k0 + 0x9E3779B9
        k1 = k1 + 0xBB67AE85
    return c0, c1, c2, c3


@triton.jit
def uniform_f32(x):
    """uint32 -> float32 in (-1, 1): (2 * (x >> 9) + 1 - 2**23) * 2**-23, exact."""
    k = (x >> 9).to(tl.int32) * 2 + (1 - 8388608)
    return k.to(tl.float32) * 1.1920928955078125e-07


@triton.jit
def _interleave4(w0, w1, w2, w3):
    """Four [n] word vectors -> [4n] in stream order (w0[0], w1[0], w2[0], w3[0], w0[1], ...)."""
    return tl.reshape(tl.join(tl.join(w0, w2), tl.join(w1, w3)), (4 * w0.shape[0],))


@triton.jit
def _store_elements(out_ptr, offs, mask, words, scale, MODE: tl.constexpr):
    if MODE == 3:
        tl.store(out_ptr + offs, words.to(tl.int64), mask=mask)
    else:
        u = uniform_f32(words)
        if MODE == 0:
            tl.store(out_ptr + offs, f32_to_bf16(u * scale), mask=mask)
        elif MODE == 1:
            tl.store(out_ptr + offs, f32_to_bf16(1.0 + u * 0.5), mask=mask)
        else:
            tl.store(out_ptr + offs, u, mask=mask)


@triton.jit(do_not_specialize=["count", "k0", "k1", "c2", "c3"])
def _tensor_stream_kernel(out_ptr, count, k0, k1, c2, c3, scale,
                          MODE: tl.constexpr, BLOCK: tl.constexpr):
    QUADS: tl.constexpr = BLOCK // 4
    pid = tl.program_id(0).to(tl.int64)
    block = pid * QUADS + tl.arange(0, QUADS)
    zero = tl.zeros((QUADS,), dtype=tl.uint32)
    w0, w1, w2, w3 = philox4x32_10(
        (block & 0xFFFFFFFF).to(tl.uint32), (block >> 32).to(tl.uint32),
        zero + c2.to(tl.uint32), zero + c3.to(tl.uint32), k0.to(tl.uint32), k1.to(tl.uint32))
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    _store_elements(out_ptr, offs, offs < count, _interleave4(w0, w1, w2, w3), scale, MODE)


@triton.jit(do_not_specialize=["count", "k0", "k1", "c2"])
def _nonce_stream_kernel(out_ptr, nonce_ptr, count, k0, k1, c2, scale,
                         MODE: tl.constexpr, BLOCK: tl.constexpr):
    QUADS: tl.constexpr = BLOCK // 4
    # One flat grid axis (a GPU's second and third allow only 65535 programs): row-major over
    # (nonce, block of the row).
    per_row = tl.cdiv(count, BLOCK)
    row = (tl.program_id(0) // per_row).to(tl.int64)
    pid = tl.program_id(0) % per_row
    nonce = tl.load(nonce_ptr + row).to(tl.uint64, bitcast=True)
    block = (pid * QUADS + tl.arange(0, QUADS)).to(tl.uint32)
    zero = tl.zeros((QUADS,), dtype=tl.uint32)
    w0, w1, w2, w3 = philox4x32_10(
        block, zero + (nonce & 0xFFFFFFFF).to(tl.uint32), zero + (nonce >> 32).to(tl.uint32),
        zero + c2.to(tl.uint32), k0.to(tl.uint32), k1.to(tl.uint32))
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    _store_elements(out_ptr + row * count, offs, offs < count, _interleave4(w0, w1, w2, w3),
                    scale, MODE)


@triton.jit(do_not_specialize=["n", "k0", "k1"])
def _philox_kernel(c_ptr, out_ptr, n, k0, k1, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    w0, w1, w2, w3 = philox4x32_10(
        tl.load(c_ptr + offs, mask=mask).to(tl.uint32),
        tl.load(c_ptr + n + offs, mask=mask).to(tl.uint32),
        tl.load(c_ptr + 2 * n + offs, mask=mask).to(tl.uint32),
        tl.load(c_ptr + 3 * n + offs, mask=mask).to(tl.uint32),
        k0.to(tl.uint32), k1.to(tl.uint32))
    tl.store(out_ptr + offs, w0.to(tl.int64), mask=mask)
    tl.store(out_ptr + n + offs, w1.to(tl.int64), mask=mask)
    tl.store(out_ptr + 2 * n + offs, w2.to(tl.int64), mask=mask)
    tl.store(out_ptr + 3 * n + offs, w3.to(tl.int64), mask=mask)


def _word(x: int) -> int:
    """A uint32 stream word as a kernel argument in [2**32, 2**33): always typed i64, so one
    compiled variant serves every key (Triton types an int by its range); kernels keep the low
    32 bits with `.to(tl.uint32)`."""
    return (x & 0xFFFFFFFF) + 2**32


def _block(device: torch.device) -> int:
    # 1024 elements = 256 Philox blocks: 2 per thread at 4 warps on a GPU. The interpreter runs
    # programs one after another in Python, so there fewer, larger programs are much faster.
    return 1024 if numerics.on_gpu(device) else 16384


def philox4x32(counters: torch.Tensor, k0: int, k1: int) -> torch.Tensor:
    """Philox4x32-10 of int64 counters [4, n] (uint32 values) -> int64 words [4, n]."""
    counters = counters.to(torch.int64).contiguous()
    n = counters.shape[1]
    out = torch.empty_like(counters)
    block = _block(counters.device)
    _philox_kernel[(triton.cdiv(n, block),)](counters, out, n, _word(k0), _word(k1), BLOCK=block,
                                             **LAUNCH)
    return out


def tensor_stream(stream: rng.Stream, count: int, mode: int, out: torch.Tensor,
                  scale: float = 1.0) -> torch.Tensor:
    """Elements 0..count-1 of a tensor stream into contiguous `out` (bf16, fp32 or int64)."""
    assert out.is_contiguous() and out.numel() == count
    block = _block(out.device)
    _tensor_stream_kernel[(triton.cdiv(count, block),)](
        out, count, *(_word(x) for x in stream), scale,
        MODE=mode, BLOCK=block, **LAUNCH)
    return out


def nonce_stream(stream: rng.Stream, nonces: torch.Tensor, count: int, mode: int,
                 out: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Elements 0..count-1 of a nonce stream for each nonce (int64 tensor) into `out` [B, count]."""
    assert out.is_contiguous() and out.shape[0] == nonces.shape[0] and out[0].numel() == count
    if len(nonces) == 0:
        return out
    block = _block(out.device)
    _nonce_stream_kernel[(triton.cdiv(count, block) * len(nonces),)](
        out, nonces, count, _word(stream.k0), _word(stream.k1), _word(stream.c2), scale,
        MODE=mode, BLOCK=block, **LAUNCH)
    return out


def make_tensor(block_hash: bytes, name: str, shape: tuple[int, ...], device,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """`mlnode.pow.model.make_tensor` on the device, bit-identical; `out` may be a slice to fill."""
    if out is None:
        out = torch.empty(shape, dtype=torch.bfloat16, device=device)
    assert out.shape == shape and out.dtype == torch.bfloat16
    stream = rng.tensor_stream(block_hash, name)
    if len(shape) == 1:
        return tensor_stream(stream, math.prod(shape), NORM, out)
    return tensor_stream(stream, math.prod(shape), MATRIX, out, tensor_scale(shape))


def make_target(block_hash: bytes, vocab: int, device) -> torch.Tensor:
    """`mlnode.pow.model.make_target` on the device, float64 (the norm may differ in its last
    ulp: torch's and numpy's sums of squares run in different orders)."""
    u = torch.empty(vocab, dtype=torch.float32, device=device)
    g = tensor_stream(rng.tensor_stream(block_hash, "target"), vocab, UNIFORM, u).double()
    return g / torch.linalg.vector_norm(g)


def _nonces(nonces, device) -> torch.Tensor:
    if isinstance(nonces, torch.Tensor):
        return nonces.to(device=device, dtype=torch.int64).contiguous()
    return torch.as_tensor(nonces, dtype=torch.int64, device=device).reshape(-1)


def make_inputs(block_hash: bytes, public_key: bytes, nonces, params: PocParams,
                device) -> torch.Tensor:
    """`mlnode.pow.model.make_inputs` on the device: bfloat16 [B, seq_len, dim], bit-identical.

    `nonces`: an int64 device tensor (or anything `torch.as_tensor` takes), each in [0, 2**63).
    """
    nonces = _nonces(nonces, device)
    out = torch.empty((len(nonces), params.seq_len, params.dim), dtype=torch.bfloat16,
                      device=device)
    scale = float(torch.tensor(math.sqrt(3.0), dtype=torch.float32))
    return nonce_stream(rng.input_stream(block_hash, public_key), nonces,
                        params.seq_len * params.dim, MATRIX, out, scale)


def permutation_keys(block_hash: bytes, public_key: bytes, nonces, vocab: int,
                     device) -> torch.Tensor:
    """`rng.nonce_u32` of the permutation stream on the device: int64 [B, vocab] (uint32 values)."""
    nonces = _nonces(nonces, device)
    out = torch.empty((len(nonces), vocab), dtype=torch.int64, device=device)
    return nonce_stream(rng.permutation_stream(block_hash, public_key), nonces, vocab, WORDS, out)


def make_permutations(block_hash: bytes, public_key: bytes, nonces, vocab: int,
                      device) -> torch.Tensor:
    """`mlnode.pow.model.make_permutations` on the device: stable argsort of the keys, int64."""
    keys = permutation_keys(block_hash, public_key, nonces, vocab, device)
    return torch.argsort(keys, dim=-1, stable=True)
