"""Local Hugging Face causal LMs: chat template, left-padded batched sampling, 4-bit and LoRA."""

from __future__ import annotations

import logging
import warnings
from itertools import accumulate
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

from core.config import ModelConfig, SamplingConfig
from core.memory import release
from core.errors import BadFileError, ModelSpecError
from core.types import Generation, Message
from models.specs import hf_source, model_fingerprint
from models.base import ChatModel, Sample

# Harmless notices printed at every run, silenced where they arise (not those libraries' other warnings):
# bitsandbytes' CPU backend cannot fetch an optional kernel from the hub (offline; it falls back to its own), and
# trl asks the model for a property transformers renamed (`is_activation_checkpointing`).
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(lambda record: "kernels-community" not in record.getMessage())
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def load_causal_lm(name_or_path: str, load_in_4bit: bool, device: str):
    """(tokenizer, model) for generation or training: bf16 on a GPU, float32 on CPU; 4-bit NF4 with
    double quantisation when asked (QLoRA's base)."""
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    source = hf_source(name_or_path)
    quant = None
    if load_in_4bit:
        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, quantization_config=quant, device_map=device)
    except (OSError, ValueError) as e:
        raise ModelSpecError(f"cannot load model {source!r}: {e}") from None
    return tokenizer, model


def load_adapter(model, adapter: Path | str, trainable: bool = False):
    """`model` with a saved LoRA adapter on it; a corrupt or truncated adapter folder, or one trained on another
    base (weights of other shapes), is one error naming it."""
    from peft import PeftModel
    from safetensors import SafetensorError

    try:
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    except torch.OutOfMemoryError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as e:  # missing file, bad JSON or weights
        reason = " ".join(str(e).split())[:300] or type(e).__name__
        raise BadFileError(f"cannot load LoRA adapter {adapter}: {reason}") from None


def is_full_model(path: Path) -> bool:
    """A fine-tuned folder that holds a whole model (full fine-tuning), not a LoRA adapter."""
    return (path / "config.json").is_file() and not (path / "adapter_config.json").is_file()


class HFChatModel(ChatModel):
    """A hub id or local model dir, optionally 4-bit NF4 and/or with a LoRA adapter on top."""

    def __init__(self, cfg: ModelConfig, name_or_path: str):
        self.cfg = cfg
        self.spec = cfg.spec
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.prefill_tokens = 65536 if self.device == "cuda" else 2048  # padded tokens per prefill pass
        if cfg.cpu_threads and self.device == "cpu":
            torch.set_num_threads(cfg.cpu_threads)
        adapter = Path(cfg.adapter).expanduser() if cfg.adapter else None
        if adapter and not adapter.is_dir():
            raise ModelSpecError(f"LoRA adapter directory {cfg.adapter!r} does not exist")
        full = adapter is not None and is_full_model(adapter)  # fully fine-tuned weights replace the base's
        self.tokenizer, model = load_causal_lm(str(adapter) if full else name_or_path, cfg.load_in_4bit, self.device)
        if adapter and not full:
            model = load_adapter(model, adapter)
        self.model = model.eval()
        # Batches are left-padded so every prompt ends where generation starts.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos) if isinstance(eos, list) else {eos}
        self.prefixes = PrefixCache(cfg.prefix_cache_mb * 2**20, self.eos_ids)
        self.keep_ids = False  # return `Sample`s (token ids kept) instead of plain generations: online RL asks for them

    def generate(
        self, prompts: Sequence[Sequence[Message]], sampling: SamplingConfig, n: int = 1,
        tools: Sequence[dict[str, Any]] | None = None,  # not native here: the agent format puts them in the prompt
    ) -> list[list[Generation]]:
        """Prefill each distinct prompt once, then decode every sequence of the call in one batch.

        On a CPU, prefill is most of the cost and a left-padded batch wastes it on padding,
        while decoding gains most from batching. So prompts are prefilled in small groups of
        similar length (`prefill_tokens` padded tokens at most), duplicate prompts (JOSH
        siblings, n samples) share one prefill, a prompt that extends one seen recently only
        computes its new tokens (`PrefixCache`), and all sequences decode together.
        """
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        room = self._context_length() - sampling.max_new_tokens
        fitted = [self._fit([{"role": m.role, "content": m.content} for m in p], room) for p in prompts]
        distinct = {ids: k for k, ids in enumerate(dict.fromkeys(fitted))}
        copies = n if sampling.temperature > 0 else 1  # greedy gives the same text every time: decode once
        rows = [distinct[ids] for ids in fitted for _ in range(copies)]
        texts: list[Generation] = []
        for start in range(0, len(rows), self.cfg.batch_size):
            texts += self._decode([list(ids) for ids in distinct], rows[start : start + self.cfg.batch_size], sampling)
        return [[texts[i * copies + k % copies] for k in range(n)] for i in range(len(prompts))]

    @torch.inference_mode()
    def _decode(self, prompts: list[list[int]], rows: list[int], sampling: SamplingConfig) -> list[Generation]:
        """Generations for `rows` (indices into `prompts`, repeats allowed), decoded as one batch.

        Each prompt but its last token is prefilled apart from the others; the caches are
        left-padded into one batch, which then decodes a token per step, and a sequence that
        ends leaves the batch (the others no longer wait on it or carry its cache).
        """
        prefilled: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        group: list[int] = []
        for i in [*sorted(set(rows), key=lambda i: len(prompts[i])), None]:
            if i is not None and (hit := self.prefixes.longest(prompts[i][:-1])):
                prefilled[i] = self._extend(prompts[i][:-1], *hit)
                continue
            if group and (i is None or len(prompts[i]) * (len(group) + 1) > self.prefill_tokens):
                prefilled.update(self._prefill({j: prompts[j][:-1] for j in group}))
                group = []
            if i is not None:
                group.append(i)
        for i, states in prefilled.items():
            self.prefixes.store(prompts[i][:-1], states)
        width = max(len(prompts[i]) for i in rows)
        cache = Cache(layers=[
            _PreallocatedLayer([prefilled[i][0][layer] for i in rows], [prefilled[i][1][layer] for i in rows],
                               width - 1, sampling.max_new_tokens)
            for layer in range(self.model.config.num_hidden_layers)
        ])
        mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in rows], device=self.device)
        position = torch.tensor([len(prompts[i]) - 1 for i in rows], device=self.device)
        tokens = torch.tensor([prompts[i][-1] for i in rows], device=self.device)  # not in the cache yet
        eos = torch.tensor(sorted(self.eos_ids), device=self.device)
        batch: list[int | None] = list(range(len(rows)))  # the row at each batch position; None once finished
        out: list[list[int]] = [[] for _ in rows]
        for _ in range(sampling.max_new_tokens):
            logits = self.model(input_ids=tokens[:, None], attention_mask=mask, position_ids=position[:, None],
                                past_key_values=cache, use_cache=True).logits[:, -1].float()
            tokens = _pick(logits, sampling)
            ended = torch.isin(tokens, eos).tolist()
            for k, (row, token) in enumerate(zip(batch, tokens.tolist())):
                if row is not None:
                    out[row].append(token)
                    batch[k] = None if ended[k] else row
            finished = batch.count(None)
            if finished == len(batch):
                break
            if finished * 4 >= len(batch):  # finished rows leave the batch, a quarter at a time (each exit copies the cache)
                keep = torch.tensor([k for k, row in enumerate(batch) if row is not None], device=self.device)
                cache.batch_select_indices(keep)
                tokens, mask, position = tokens[keep], mask[keep], position[keep]
                batch = [row for row in batch if row is not None]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            position = position + 1
        return [self._generation(ids, prompts[i]) for ids, i in zip(out, rows)]

    def _prefill(self, group: dict[int, list[int]]) -> dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]]:
        """One padded forward pass over a few token lists of similar length: each one's cache, padding cut off."""
        width = max(len(x) for x in group.values())
        ids = torch.tensor([[self.tokenizer.pad_token_id] * (width - len(x)) + x for x in group.values()], device=self.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in group.values()], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        layers = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                            logits_to_keep=1).past_key_values.layers
        return {i: ([layer.keys[row : row + 1, :, width - len(x) :].clone() for layer in layers],
                    [layer.values[row : row + 1, :, width - len(x) :].clone() for layer in layers])
                for row, (i, x) in enumerate(group.items())}

    def _extend(self, ids: list[int], length: int, keys: list[torch.Tensor], values: list[torch.Tensor]):
        """The states of `ids` from the cached states of its first `length` tokens: only the rest is computed."""
        if length == len(ids):
            return keys, values
        cache = DynamicCache()
        for layer, (k, v) in enumerate(zip(keys, values)):
            cache.update(k, v, layer)
        rest = torch.tensor([ids[length:]], device=self.device)
        positions = torch.arange(length, len(ids), device=self.device)[None, :]
        self.model(input_ids=rest, position_ids=positions, past_key_values=cache, use_cache=True, logits_to_keep=1)
        return [layer.keys for layer in cache.layers], [layer.values for layer in cache.layers]

    def _context_length(self) -> int:
        return getattr(self.model.config, "max_position_embeddings", None) or self.tokenizer.model_max_length

    def _ids(self, chat: list[dict[str, str]]) -> tuple[int, ...]:
        return tuple(self.tokenizer.apply_chat_template(  # may be longer than the model's context: `_fit` cuts it
            chat, add_generation_prompt=True, tokenize=True, return_dict=False, tokenizer_kwargs={"verbose": False}))

    def _fit(self, chat: list[dict[str, str]], room: int) -> tuple[int, ...]:
        """The prompt's token ids; when they exceed `room`, the oldest turns after the system prompt go.

        Turns go in steps of half the room the system prompt leaves, counted from the start of
        the conversation, so the conversation's next prompts start at the same turn, extend
        this one and reuse its states (`PrefixCache`) until the context is full again.
        Dropping one turn at a time would start each prompt at a new turn and compute it
        from scratch.
        """
        ids = self._ids(chat)
        head, body = (chat[:1], chat[1:]) if chat[0]["role"] == "system" else ([], chat)
        if len(ids) <= room or len(body) < 2:  # nothing to drop: a prompt made of one long turn goes as it is
            return ids
        step = max(1, (room - len(self._ids(head))) // 2)
        sizes = [len(x) for x in self.tokenizer([m["content"] for m in body], add_special_tokens=False)["input_ids"]]
        starts = [0, *accumulate(sizes)][:-1]  # where each turn starts, in tokens
        cut = step
        while True:  # the last turn always stays
            first = next((k for k, offset in enumerate(starts) if offset >= cut), len(body) - 1)
            ids = self._ids(head + body[first:])
            if len(ids) <= room or first == len(body) - 1:
                return ids
            cut += step

    def _generation(self, ids: list[int], prompt: list[int]) -> Generation:
        """Cut at the first eos (kept in the count, as the model did produce it); the rest is padding."""
        length = next((k + 1 for k, t in enumerate(ids) if t in self.eos_ids), len(ids))
        text = self.tokenizer.decode(ids[:length], skip_special_tokens=True)
        if self.keep_ids:
            return Sample(text=text, prompt_tokens=len(prompt), completion_tokens=length, prompt_ids=tuple(prompt),
                          completion_ids=tuple(ids[:length]))
        return Generation(text=text, prompt_tokens=len(prompt), completion_tokens=length)

    def weights_changed(self) -> None:
        """After a training step: states cached for earlier prompts were computed by the old weights."""
        self.prefixes.clear()

    def fingerprint(self) -> str:
        return model_fingerprint(self.cfg)

    def close(self) -> None:
        self.model = None
        self.prefixes.clear()  # up to prefix_cache_mb, freed even while something still holds this object
        release()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class PrefixCache:
    """Attention states of recently prefilled prompts, reused by prompts that start with one.

    A conversation's next prompt is the last one plus a few messages, and JOSH siblings share
    everything before their turn, so most of a prompt was usually computed already. Lookups
    are by whole messages (a prefix ending in an end-of-message token); least recently used
    entries are dropped beyond `max_bytes`.
    """

    def __init__(self, max_bytes: int, boundaries: set[int]):
        self.max_bytes, self.boundaries = max_bytes, boundaries
        self.entries: OrderedDict[tuple[int, ...], tuple[list[torch.Tensor], list[torch.Tensor]]] = OrderedDict()
        self.clear()

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0
        self.reused_tokens = 0

    def longest(self, ids: list[int]) -> tuple[int, list[torch.Tensor], list[torch.Tensor]] | None:
        ends = {len(ids), *(k + 1 for k, t in enumerate(ids) if t in self.boundaries)}
        for end in sorted(ends, reverse=True):
            key = tuple(ids[:end])
            if key in self.entries:
                self.entries.move_to_end(key)
                self.reused_tokens += end
                return end, *self.entries[key]
        return None

    def store(self, ids: list[int], states: tuple[list[torch.Tensor], list[torch.Tensor]]) -> None:
        key, size = tuple(ids), _size(states)
        if key in self.entries or size > self.max_bytes:
            return
        self.entries[key] = states
        self.bytes += size
        while self.bytes > self.max_bytes:
            self.bytes -= _size(self.entries.popitem(last=False)[1])


def _size(states: tuple[list[torch.Tensor], list[torch.Tensor]]) -> int:
    return sum(t.numel() * t.element_size() for part in states for t in part)


class _PreallocatedLayer(DynamicLayer):
    """One layer's decode-batch cache, in a buffer with room for every token still to come.

    The stock layer concatenates each step's states onto the cache, copying all of it every
    step: with a large batch on a CPU that copy costs more than the model. Here each row's
    prompt states sit right-aligned at `width` (zeros in front, masked out by the attention
    mask), new tokens are written in place and attention reads a view.
    """

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], width: int, room: int):
        super().__init__()
        self.lazy_initialization(keys[0], values[0])
        self._keys, self._values = (_right_aligned(states, width + room, width) for states in (keys, values))
        self.length = width
        self._expose()

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        self._keys[:, :, self.length : end] = key_states
        self._values[:, :, self.length : end] = value_states
        self.length = end
        self._expose()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys, self._values = self._keys[indices], self._values[indices]
        self._expose()

    def _expose(self) -> None:
        self.keys, self.values = self._keys[:, :, : self.length], self._values[:, :, : self.length]


def _right_aligned(states: list[torch.Tensor], capacity: int, width: int) -> torch.Tensor:
    """[1, heads, length_i, dim] per row -> [rows, heads, capacity, dim], each row ending at `width`.

    The padding in front is zeroed (masked scores still multiply it); what follows `width` is
    written before it is read.
    """
    heads, dim = states[0].shape[1], states[0].shape[3]
    out = states[0].new_empty(len(states), heads, capacity, dim)
    for row, s in enumerate(states):
        out[row, :, : width - s.shape[2]] = 0
        out[row, :, width - s.shape[2] : width] = s[0]
    return out


def _pick(logits: torch.Tensor, sampling: SamplingConfig) -> torch.Tensor:
    """Greedy, or temperature + nucleus sampling (no top-k, as in the chat APIs)."""
    if sampling.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > sampling.top_p  # the most likely token always stays
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs.masked_fill(outside, 0.0))
    return torch.multinomial(probs, 1).squeeze(-1)
