"""The offline default model: a tiny Llama built locally, so every flow runs without a hub.

`embedded` is trained here from scratch on ToolWOZ's human training dialogues (see
`models/pretrain.py`) on first use. `build_random_model` makes an untrained one of the same
kind for tests: it exercises the real Hugging Face code paths in milliseconds.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from collections.abc import Iterable
from pathlib import Path

from core.config import BootstrapConfig
from core.fingerprint import EMBEDDED_MODEL_CODE, code_hash, stable_hash
from core.paths import cache_dir
from tasks.react import MARKERS
from tasks.user_sim import END_MARKER

SPECIAL_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "<|end|>", "<|pad|>"]
JSON_VALUE, SPOKEN_VALUE = ': "', ':" '  # how a JSON string value is written, and how it is tokenized
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


def cased_words(tool_schemas: Iterable[dict] = ()) -> list[str]:
    """What the lowercasing tokenizer keeps as written: the format's markers, API and parameter names with capitals."""
    names = {n for t in tool_schemas for n in (t["function"]["name"], *t["function"]["parameters"]["properties"])}
    return [*MARKERS, END_MARKER, *sorted(n for n in names if n != n.lower())]


def build_tokenizer(
    max_position_embeddings: int = 2048,
    texts: Iterable[str] | None = None,
    vocab_size: int = VOCAB_SIZE,
    keep_case: Iterable[str] = cased_words(),
):
    """Byte-level BPE (any text encodes, no unknown tokens) with role tokens and a chat template.

    Merges are learned from `texts` (default: a few in-domain lines, for the random model).
    Text is lowercased, except the `keep_case` words (the format's markers, API and
    parameter names), which are whole tokens: a tiny model then copies "Saturday" or
    "Saffron Brasserie" into a call as the same tokens the tools read in lowercase, and
    spends no vocabulary on cased twins of words. A JSON string value is encoded with its
    space moved inside the quotes (`"day":" friday"`), and decoded back: a value then
    starts with the token a word has in speech (` friday`), so a call copies the
    customer's words token for token.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    keep_case = list(dict.fromkeys(keep_case))
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(JSON_VALUE, SPOKEN_VALUE)])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Replace(SPOKEN_VALUE, JSON_VALUE)])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(keep_case),
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(MERGE_TEXT.splitlines() if texts is None else texts, trainer)
    tok.add_tokens([AddedToken(word, normalized=False) for word in keep_case])
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


def embedded_model_dir(cfg: BootstrapConfig | None = None) -> Path:
    """The trained embedded model's dir under the cache, trained on first use.

    Keyed on the bootstrap config, the training corpus's content and the source of the
    training recipe and prompt formats, so a changed recipe or corpus trains a new model
    and an unchanged one is reused. Trained into a temp
    dir beside it and renamed into place: a killed build never leaves a half model.
    """
    from envs.toolwoz import load_toolwoz
    from envs.toolwoz.data import data_version
    from envs.toolwoz.transcripts import corpus_file, corpus_hash

    cfg = cfg or BootstrapConfig()
    corpus = corpus_file(load_toolwoz(), "train", cfg.max_dialogues)
    key = stable_hash(cfg, data_version(), corpus_hash(corpus), code_hash(*EMBEDDED_MODEL_CODE))[:12]
    final = cache_dir() / "models" / f"embedded-{key}"
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        _bootstrap(cfg, corpus, tmp)
        os.chmod(tmp, 0o755)
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():  # not a lost race with another builder: a real failure
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _bootstrap(cfg: BootstrapConfig, corpus_path: Path, out: Path) -> None:
    from core.records import read_jsonl
    from envs.toolwoz import load_toolwoz
    from envs.toolwoz.substitution import substitute_corpus, value_pools
    from models.pretrain import device, train_embedded, use_bf16

    print(
        f"Building the embedded model (first use only): ToolWOZ training dialogues, then "
        f"{cfg.budget_tokens / 1e6:.1f}M tokens of training (about 35 min on 2 CPU cores, a minute on a GPU). "
        f"It is cached afterwards.",
        file=sys.stderr,
    )
    data, human = load_toolwoz(), read_jsonl(corpus_path)
    corpus = substitute_corpus(human, value_pools(data, cfg.substitute_pool), cfg.substitute_share, cfg.seed)
    report = train_embedded(corpus, data.tool_schemas, cfg, out)
    (out / "bootstrap.json").write_text(
        json.dumps({"config": cfg.model_dump(), "device": device(), "bf16": use_bf16(cfg, device()),
                    "dialogues": len(corpus), "substituted": sum(a is not b for a, b in zip(human, corpus)),
                    **asdict(report), "tokens_per_s": report.tokens_per_s}, indent=1)
    )
