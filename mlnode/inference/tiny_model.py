"""Tiny random Llama models, written to a local folder that vLLM (and transformers) can load.

Nothing here may touch the network: tests and devnets build their model with `make_tiny_model`
instead of downloading one. The folder holds a Hugging Face style checkpoint: config.json
(LlamaForCausalLM), model.safetensors (random weights from a seeded torch generator), a byte-level
BPE tokenizer.json trained here on a small built-in corpus, tokenizer_config.json with a chat
template, and generation_config.json. The same arguments always give the same files.

Shapes are chosen for the vLLM CPU backend: head_dim must be 64 (16 is rejected), dtype float32.
"""

from __future__ import annotations

import json
from pathlib import Path

BOS = "<|bos|>"
EOS = "<|end|>"  # ends an assistant turn; vLLM stops on it
PAD = "<|pad|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (BOS, EOS, PAD, *ROLE_TOKENS)

# Each message is "<|role|>\ncontent<|end|>\n"; the generation prompt opens an assistant turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

# A deterministic training corpus: enough distinct text for ~1000 BPE merges.
_CORPUS_LINES = (
    "The quick brown fox jumps over the lazy dog.",
    "A decentralized network pays its hosts for inference and training work.",
    "Proof of compute weights each participant by the nonces it can show.",
    "Validators replay a sample of inferences and compare the log probabilities.",
    "Every block carries transactions, votes and the hash of the previous block.",
    "Hello, world! How are you today? I am fine, thank you very much.",
    "You are a helpful assistant. Answer briefly and precisely.",
    "What is the capital of France? Paris is the capital of France.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 42 100 256 1024 65536 3.14159",
    "Structured concurrency means every task has a parent that waits for it.",
    "The model reads tokens, attends to the past and predicts the next token.",
    "Keys, signatures and hashes must be computed identically on every node.",
    "def main():\n    print('hello')\n    return 0\n",
    "for i in range(10):\n    total += i * i\n",
    '{"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}',
    "Once upon a time there was a small model that lived in a temporary folder.",
    "It had two layers, two heads and a vocabulary built from bytes and merges.",
    "Rain falls on the mountains; rivers carry the water down to the sea.",
    "Stars shine at night while the city sleeps and the clocks keep ticking.",
    "Bread, butter, cheese, apples, oranges, tea and coffee for breakfast.",
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    "January February March April May June July August September October November December",
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu",
    "red orange yellow green blue indigo violet black white grey",
)


def corpus() -> list[str]:
    """The built-in training text (repeated lines give BPE stable pair counts)."""
    lines = list(_CORPUS_LINES)
    # Variations widen the merge table without any randomness.
    lines += [line.lower() for line in _CORPUS_LINES]
    lines += [line.upper() for line in _CORPUS_LINES[:8]]
    return lines * 3


def train_tokenizer(vocab_size: int):
    """A byte-level BPE tokenizer with exactly `vocab_size` tokens (specials first)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    if tokenizer.get_vocab_size() != vocab_size:
        raise ValueError(
            f"the built-in corpus yields {tokenizer.get_vocab_size()} tokens, "
            f"not the {vocab_size} asked for; choose a smaller vocab_size"
        )
    return tokenizer


def make_tiny_model(
    directory: str | Path,
    *,
    hidden: int = 128,
    n_heads: int = 2,
    n_layers: int = 2,
    vocab_size: int = 512,
    seed: int = 0,
    intermediate: int | None = None,
    max_positions: int = 1024,
    init_std: float = 0.05,
) -> Path:
    """Write a random LlamaForCausalLM checkpoint with its tokenizer into `directory`.

    Returns the directory (created if needed). Deterministic in its arguments: the tokenizer is
    trained on the built-in corpus and the weights come from `torch.Generator().manual_seed(seed)`.
    """
    import torch
    from safetensors.torch import save_file

    if hidden % n_heads:
        raise ValueError(f"hidden {hidden} is not a multiple of n_heads {n_heads}")
    head_dim = hidden // n_heads
    intermediate = intermediate or 2 * hidden
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer(vocab_size)
    tokenizer.save(str(out / "tokenizer.json"))
    bos_id = tokenizer.token_to_id(BOS)
    eos_id = tokenizer.token_to_id(EOS)
    pad_id = tokenizer.token_to_id(PAD)

    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_heads,
        "num_hidden_layers": n_layers,
        "head_dim": head_dim,
        "vocab_size": vocab_size,
        "max_position_embeddings": max_positions,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "initializer_range": init_std,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
        "torch_dtype": "float32",
        "use_cache": True,
    }
    _write_json(out / "config.json", config)
    _write_json(
        out / "generation_config.json",
        {"bos_token_id": bos_id, "eos_token_id": eos_id, "pad_token_id": pad_id},
    )
    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": BOS,
            "eos_token": EOS,
            "pad_token": PAD,
            "add_bos_token": False,
            "add_eos_token": False,
            "clean_up_tokenization_spaces": False,
            "model_max_length": max_positions,
            "chat_template": CHAT_TEMPLATE,
        },
    )
    _write_json(
        out / "special_tokens_map.json", {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD}
    )

    gen = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float32) * init_std

    tensors: dict[str, torch.Tensor] = {"model.embed_tokens.weight": normal(vocab_size, hidden)}
    for i in range(n_layers):
        p = f"model.layers.{i}."
        tensors[p + "input_layernorm.weight"] = torch.ones(hidden)
        tensors[p + "post_attention_layernorm.weight"] = torch.ones(hidden)
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[p + f"self_attn.{name}.weight"] = normal(hidden, hidden)
        tensors[p + "mlp.gate_proj.weight"] = normal(intermediate, hidden)
        tensors[p + "mlp.up_proj.weight"] = normal(intermediate, hidden)
        tensors[p + "mlp.down_proj.weight"] = normal(hidden, intermediate)
    tensors["model.norm.weight"] = torch.ones(hidden)
    tensors["lm_head.weight"] = normal(vocab_size, hidden)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
