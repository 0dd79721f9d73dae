"""The PoC function on a GPU: `TritonPocModel`, the device twin of `mlnode.pow.model.PocModel`.

Weights, inputs and permutations are drawn on the device (`kernels.philox`); the GEMMs are
`torch.matmul` in bf16 with fp32 accumulation (cuBLAS on a GPU) and everything between them is a
fused Triton kernel (`kernels.fused`, `kernels.attention`, `kernels.distance`). The rounding points
are the reference's; what differs is summation order (GEMMs, attention, norms) and exp, so a
one-ulp bfloat16 difference now and then moves a nonce's distance (by up to ~4e-4 on TEST_PARAMS
under the interpreter, where 0.5-1% of nonces differ at all; expect more on a GPU, whose GEMMs
sum in another order than the CPU's). On CPU the kernels run under TRITON_INTERPRET=1, slowly:
that is the test path. Pure: no I/O.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from chain.types.poc import PocParams
from kernels import philox
from kernels.attention import attention
from kernels.distance import distances as distances_kernel
from kernels.fused import add_rms_norm, rope_, swiglu
from mlnode.pow.model import Layer, rope_tables, tensor_shapes


@dataclass(frozen=True)
class TritonPocWeights:
    params: PocParams
    block_hash: bytes
    layers: tuple[Layer, ...]
    norm: torch.Tensor             # [d] float32
    output: torch.Tensor           # [V, d] float32 holding bfloat16 values
    target: torch.Tensor           # [V] float64 unit vector
    cos: torch.Tensor              # [seq_len, head_dim / 2] float32
    sin: torch.Tensor

    @classmethod
    def generate(cls, params: PocParams, block_hash: bytes, device) -> TritonPocWeights:
        """Every tensor drawn on `device`; stacked matrices are generated into their slices."""
        device = torch.device(device)
        shapes = tensor_shapes(params)
        d, f = params.dim, params.ffn_dim

        def tensor(name: str, out: torch.Tensor | None = None) -> torch.Tensor:
            return philox.make_tensor(block_hash, name, shapes[name], device, out)

        def stacked(names: list[str], rows: int) -> torch.Tensor:
            out = torch.empty((len(names) * rows, d), dtype=torch.bfloat16, device=device)
            for j, name in enumerate(names):
                tensor(name, out[j * rows:(j + 1) * rows])
            return out

        layers = []
        for i in range(params.n_layers):
            pre = f"layers.{i}."
            layers.append(Layer(
                attention_norm=tensor(pre + "attention_norm.weight").float(),
                wqkv=stacked([pre + f"attention.{w}.weight" for w in ("wq", "wk", "wv")], d),
                wo=tensor(pre + "attention.wo.weight"),
                ffn_norm=tensor(pre + "ffn_norm.weight").float(),
                w13=stacked([pre + f"feed_forward.{w}.weight" for w in ("w1", "w3")], f),
                w2=tensor(pre + "feed_forward.w2.weight"),
            ))
        cos, sin = rope_tables(params)
        return cls(params, block_hash, tuple(layers), tensor("norm.weight").float(),
                   tensor("output.weight").float(),
                   philox.make_target(block_hash, params.vocab, device),
                   cos.to(device), sin.to(device))


@contextlib.contextmanager
def _fp32_accumulation():
    """cuBLAS may reduce bf16 GEMMs in reduced precision (split-K) unless told not to; the spec
    says fp32 accumulation. (TF32 is harmless here: the fp32 logits GEMM multiplies bf16 values,
    which TF32 holds exactly.)"""
    flags = torch.backends.cuda.matmul
    saved = flags.allow_bf16_reduced_precision_reduction
    flags.allow_bf16_reduced_precision_reduction = False
    try:
        yield
    finally:
        flags.allow_bf16_reduced_precision_reduction = saved


def forward(w: TritonPocWeights, x: torch.Tensor) -> torch.Tensor:
    """bf16 inputs [B, s, d] -> fp32 logits of the last position [B, V]; `model.forward`."""
    p = w.params
    B, s, d = x.shape
    H, hd = p.n_heads, p.head_dim
    h = x.float()
    h, a = add_rms_norm(h, None, w.layers[0].attention_norm, p.norm_eps)
    for i, layer in enumerate(w.layers):
        last = i == len(w.layers) - 1
        qkv = torch.matmul(a.view(B, s, d), layer.wqkv.T).view(B, s, 3, H, hd)
        if last:
            # Only the last position's query, attention, residual and FFN are needed.
            rope_(qkv[:, :, 1], w.cos, w.sin)
            q = rope_(qkv[:, -1:, 0], w.cos, w.sin, pos0=s - 1)
            h = h.view(B, s, d)[:, -1]
        else:
            rope_(qkv[:, :, :2].flatten(2, 3), w.cos, w.sin)
            q = qkv[:, :, 0]
        o = attention(q, qkv[:, :, 1], qkv[:, :, 2], causal=not last)
        o = torch.matmul(o, layer.wo.T)
        h, a = add_rms_norm(h, o, layer.ffn_norm, p.norm_eps)
        act = swiglu(torch.matmul(a, layer.w13.T))
        nxt = w.norm if last else w.layers[i + 1].attention_norm
        h, a = add_rms_norm(h, torch.matmul(act, layer.w2.T), nxt, p.norm_eps)
    return torch.matmul(a.float(), w.output.T)


class TritonPocModel:
    """The PoC function for one block hash on one device: distances for (public key, nonces)."""

    def __init__(self, weights: TritonPocWeights) -> None:
        self.weights = weights
        self.params = weights.params
        self.device = weights.target.device

    @classmethod
    def build(cls, params: PocParams, block_hash: bytes, device="cuda") -> TritonPocModel:
        with torch.inference_mode():
            return cls(TritonPocWeights.generate(params, block_hash, device))

    def nonce_tensor(self, nonces) -> torch.Tensor:
        """Nonces (ints in [0, 2**63), a numpy array or a tensor) as an int64 device tensor."""
        if isinstance(nonces, torch.Tensor):
            return nonces.to(device=self.device, dtype=torch.int64).reshape(-1)
        array = np.asarray(nonces, dtype=np.uint64).reshape(-1)
        if array.size and int(array.max()) >= 2**63:
            raise ValueError("nonces must be below 2**63")
        return torch.from_numpy(array.astype(np.int64)).to(self.device)

    def logits(self, public_key: bytes, nonces) -> torch.Tensor:
        """fp32 [B, V] logits of the last position, on the device."""
        nonces = self.nonce_tensor(nonces)
        w = self.weights
        with torch.inference_mode(), _fp32_accumulation():
            x = philox.make_inputs(w.block_hash, public_key, nonces, self.params, self.device)
            return forward(w, x)

    def distances(self, public_key: bytes, nonces) -> np.ndarray:
        """float64 [B] distances of the nonces' outputs to the target (+inf for a zero output)."""
        nonces = self.nonce_tensor(nonces)
        if len(nonces) == 0:
            return np.zeros(0)
        w = self.weights
        logits = self.logits(public_key, nonces)
        with torch.inference_mode():
            perms = philox.make_permutations(w.block_hash, public_key, nonces, self.params.vocab,
                                             self.device)
            return distances_kernel(logits, perms, w.target).cpu().numpy()
