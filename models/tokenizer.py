"""The embedded model's tokenizer and chat template: what a byte-level BPE sees of a dialogue.

Shared by the random test model (`models/embedded.py`) and the trained one (`models/pretrain.py`).
"""

from __future__ import annotations

from collections.abc import Iterable

from formats.react import MARKERS
from formats.user_sim import END_MARKER

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
