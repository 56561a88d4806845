"""The offline default model: a tiny Llama built locally, so every flow runs without a hub.

Until a trained bootstrap model replaces it, its weights are random: it exercises the real
Hugging Face code paths (chat template, batching, 4-bit, LoRA) at a size a CPU runs in ms.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from core.paths import cache_dir

EMBEDDED_NAME = "embedded-random-v1"
SPECIAL_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "<|end|>", "<|pad|>"]
VOCAB_SIZE = 384  # 256 bytes + 6 special tokens + merges; a multiple of 128 so 4-bit covers lm_head dims

# Each message renders as `<|role|>content<|end|>`; assistant content is marked as a generation
# span so trainers can compute the loss on assistant tokens only.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "<|assistant|>{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}"
    "{%- else -%}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)

# A little in-domain text so the BPE learns some merges (common words, the ReAct markers, JSON).
MERGE_TEXT = """\
Hello, I am looking for a cheap restaurant in the centre of town that serves italian food.
I would like to book a table for two people on Saturday at 19:30, please.
Can you find me a hotel in the north with free parking and free wifi? It should be a guesthouse.
I need a train from Cambridge to London on Friday that leaves after 10:15 and arrives by 13:00.
Are there any attractions in the west, like a museum, a college or a theatre?
PLAN I should search for the restaurant first. APICALL {"name": "search_restaurant", "parameters": {"food": "italian", "pricerange": "cheap", "area": "centre"}}
PLAN The user wants a booking. APICALL {"name": "book_hotel", "parameters": {"name": "acorn guest house", "bookpeople": "2", "bookday": "monday", "bookstay": "3"}}
APICALL {"name": "search_train", "parameters": {"departure": "cambridge", "destination": "london", "day": "friday", "leaveAt": "10:15"}}
SPEAK I have booked it for you. Your reference number is 00000013. Is there anything else I can help you with?
SPEAK There are no trains matching your request. Would you like to travel on another day?
Thank you, that is all I need. Goodbye! END_CONVERSATION
"""


def build_tokenizer(max_position_embeddings: int = 2048):
    """Byte-level BPE (any text encodes, no unknown tokens) with role tokens and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(MERGE_TEXT.splitlines(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|end|>",
        pad_token="<|pad|>",
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=max_position_embeddings,
    )


def build_random_model(
    path: Path,
    hidden: int = 128,
    layers: int = 2,
    heads: int = 4,
    intermediate: int = 256,
    max_position_embeddings: int = 2048,
    seed: int = 0,
) -> Path:
    """Save a random-initialised tiny Llama + tokenizer as a standard Hugging Face model dir.

    Embeddings are untied: with tied random embeddings greedy decoding just repeats the
    last prompt token, which would make every greedy test pass trivially.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if hidden % 128 or intermediate % 128:
        raise ValueError(f"hidden ({hidden}) and intermediate ({intermediate}) must be multiples of 128 for 4-bit")
    tokenizer = build_tokenizer(max_position_embeddings)
    config = LlamaConfig(
        vocab_size=-(-len(tokenizer) // 128) * 128,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def embedded_model_dir() -> Path:
    """The embedded model's dir under the cache, built on first use.

    Built into a temp dir beside it and renamed into place, so a killed build never leaves
    a half model and two concurrent first uses both end with the same complete dir.
    """
    final = cache_dir() / "models" / EMBEDDED_NAME
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_NAME}-", dir=final.parent))
    try:
        build_random_model(tmp)
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():  # not a lost race with another builder: a real failure
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
