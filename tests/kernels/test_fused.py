"""Fused kernels against the reference ops of `mlnode.pow.model` on random data.

Where the arithmetic is the same operation for operation (residual add, RoPE) the results must be
equal; where a sum's order or exp differs (RMSNorm, SiLU, attention) a bfloat16 output may be one
ulp off, rarely: the bounds below are about 10x what the interpreter shows (see each test).
"""

import math

import numpy as np
import pytest
import torch

from chain.types.poc import PocParams
from kernels import attention as attention_kernels
from kernels import distance, fused
from mlnode.pow import model
from tests.kernels.compare import bf16_report

BF16 = torch.bfloat16


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture(params=["default", "tiled"])
def tiling(request, monkeypatch):
    """'tiled' forces small two-row tiles, as a GPU's would be for long rows: several column
    chunks per row, masked rows and columns."""
    if request.param == "tiled":
        monkeypatch.setattr(fused, "_tile", lambda n, device, cap=0: (2, 32))
    return request.param


def test_add_rms_norm_matches_reference(device, gen, tiling):
    rows, d = (300, 1792) if tiling == "default" else (7, 100)
    h = torch.randn(rows, d, generator=gen) * 3
    delta = (torch.randn(rows, d, generator=gen) * 2).to(BF16)
    weight = (1 + torch.rand(d, generator=gen) - 0.5).to(BF16).float()
    h_new, a = fused.add_rms_norm(h.to(device), delta.to(device), weight.to(device), 1e-5)
    want_h = h + delta.float()
    assert torch.equal(h_new.cpu(), want_h)                 # the same single fp32 add
    differing, ulps = bf16_report(a, model.rms_norm(want_h, weight, 1e-5))
    assert ulps <= 1 and differing < 1e-4, (differing, ulps)   # interpreter: ~7e-6, 1 ulp


def test_rms_norm_without_residual_of_strided_rows(device, gen, tiling):
    h = torch.randn(4, 8, 64, generator=gen) * 5
    weight = (1 + torch.rand(64, generator=gen) - 0.5).to(BF16).float()
    last = h.to(device)[:, -1]                              # row stride 8 * 64
    same, a = fused.add_rms_norm(last, None, weight.to(device), 1e-5)
    assert same.data_ptr() == last.data_ptr()
    differing, ulps = bf16_report(a, model.rms_norm(h[:, -1], weight, 1e-5))
    assert ulps <= 1 and differing < 1e-2, (differing, ulps)


def test_add_rms_norm_of_strided_rows_with_residual(device, gen):
    h = torch.randn(4, 8, 64, generator=gen)
    delta = torch.randn(4, 1, 64, generator=gen).to(BF16)
    weight = torch.ones(64)
    h_new, a = fused.add_rms_norm(h.to(device)[:, -1], delta.to(device), weight.to(device), 1e-5)
    want = h[:, -1] + delta[:, 0].float()
    assert torch.equal(h_new.cpu(), want)
    assert bf16_report(a, model.rms_norm(want, weight, 1e-5))[1] <= 1


def rope_case(gen, B=3, S=16, H=4, hd=32):
    p = PocParams(dim=H * hd, n_layers=1, n_heads=H, ffn_dim=8, vocab=8, seq_len=S)
    cos, sin = model.rope_tables(p)
    return (torch.randn(B, S, H, hd, generator=gen) * 4).to(BF16), cos, sin


def test_rope_is_exact(device, gen, tiling):
    x, cos, sin = rope_case(gen)
    got = fused.rope_(x.clone().to(device), cos.to(device), sin.to(device))   # in place
    assert torch.equal(got.cpu(), model.rope(x, cos, sin))


def test_rope_of_the_last_position_is_exact(device, gen):
    x, cos, sin = rope_case(gen)
    got = fused.rope_(x.clone().to(device)[:, -1:], cos.to(device), sin.to(device),
                      pos0=x.shape[1] - 1)
    assert torch.equal(got.cpu(), model.rope(x[:, -1:], cos[-1:], sin[-1:]))


def test_rope_in_place_on_the_q_and_k_heads_of_a_projection(device, gen):
    B, S, H, hd = 2, 8, 2, 32
    qkv = (torch.randn(B, S, 3, H, hd, generator=gen) * 2).to(BF16)
    _, cos, sin = rope_case(gen, B, S, H, hd)
    buf = qkv.clone().to(device)
    fused.rope_(buf[:, :, :2].flatten(2, 3), cos.to(device), sin.to(device))
    buf = buf.cpu()
    assert torch.equal(buf[:, :, 0], model.rope(qkv[:, :, 0], cos, sin))
    assert torch.equal(buf[:, :, 1], model.rope(qkv[:, :, 1], cos, sin))
    assert torch.equal(buf[:, :, 2], qkv[:, :, 2])          # v untouched


def test_swiglu_matches_reference(device, gen):
    f = 2048
    gu = (torch.randn(64, 2 * f, generator=gen) * 3).to(BF16)
    want = (torch.nn.functional.silu(gu[:, :f].float()) * gu[:, f:].float()).to(BF16)
    differing, ulps = bf16_report(fused.swiglu(gu.to(device)), want)
    assert ulps <= 1 and differing < 1e-4, (differing, ulps)   # interpreter: ~4e-6, 1 ulp


@pytest.mark.parametrize(("S", "H", "hd", "block_n"),
                         [(8, 2, 32, None), (64, 4, 64, None), (64, 4, 64, 16), (40, 2, 24, 16)])
def test_causal_attention_matches_reference(device, gen, S, H, hd, block_n):
    # block_n=16 walks the keys in several blocks (the three-pass path); hd=24 pads the head.
    q, k, v = ((torch.randn(4, S, H, hd, generator=gen) * 2).to(BF16) for _ in range(3))
    got = attention_kernels.attention(q.to(device), k.to(device), v.to(device), block_n=block_n)
    differing, ulps = bf16_report(got, model.attention(q, k, v, causal=True))
    assert ulps <= 1 and differing < 1e-3, (differing, ulps)   # interpreter: <= 6e-5, 1 ulp


@pytest.mark.parametrize("block_n", [None, 16])
def test_last_position_attention_matches_reference(device, gen, block_n):
    q, k, v = ((torch.randn(8, 48, 2, 64, generator=gen) * 2).to(BF16) for _ in range(3))
    got = attention_kernels.attention(q[:, -1:].to(device), k.to(device), v.to(device),
                                      causal=False, block_n=block_n)
    differing, ulps = bf16_report(got, model.attention(q[:, -1:], k, v, causal=False))
    assert ulps <= 1 and differing < 1e-2, (differing, ulps)


def test_attention_query_offset_is_causal_mask_offset(device, gen):
    # Queries at positions 5..7 of 8 keys: row i sees keys 0..5 + i, like rows 5..7 of the full.
    q, k, v = ((torch.randn(2, 8, 2, 32, generator=gen)).to(BF16) for _ in range(3))
    full = model.attention(q, k, v, causal=True)
    got = attention_kernels.attention(q[:, 5:].to(device), k.to(device), v.to(device))
    assert bf16_report(got, full[:, 5:])[1] <= 1


def test_distances_match_reference(device, gen):
    B, V = 50, 8196
    logits = torch.randn(B, V, generator=gen) * 3
    logits[7] = 0                                           # a degenerate output: +inf
    perms = torch.stack([torch.randperm(V, generator=gen) for _ in range(B)])
    target = np.random.default_rng(3).uniform(-1, 1, V)
    target /= np.linalg.norm(target)
    want = model.distances_from_logits(logits.numpy(), perms.numpy(), target)
    got = distance.distances(logits.to(device), perms.to(device),
                             torch.from_numpy(target).to(device)).cpu().numpy()
    assert math.isinf(got[7]) and math.isinf(want[7])
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=1e-14)
