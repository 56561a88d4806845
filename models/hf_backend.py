"""Local Hugging Face causal LMs: chat template, left-padded batched sampling, 4-bit and LoRA."""

from __future__ import annotations

import logging
import warnings
from itertools import accumulate
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

from core.config import ModelConfig, SamplingConfig
from core.cpu import idle_cores
from core.memory import release, trim
from core.errors import BadFileError, ConfigError, ModelSpecError
from core.types import Generation, Message
from models.specs import hf_source, model_fingerprint
from models import ort_decode
from models.base import ChatModel, Sample
from models.prefix_tree import PrefixTree

# Harmless notices printed at every run, silenced where they arise (not those libraries' other warnings):
# bitsandbytes' CPU backend cannot fetch an optional kernel from the hub (offline; it falls back to its own), and
# trl asks the model for a property transformers renamed (`is_activation_checkpointing`).
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(lambda record: "kernels-community" not in record.getMessage())
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


# Row copies freed per layer above which the heap is trimmed: SmolLM2's 32 rows of 1.5k tokens are 76 MB a layer (a
# batch's 2.3 GB otherwise kept); the embedded model's are kilobytes, where a trim only costs (4-25% of a decode).
TRIM_BYTES = 32 * 2**20


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
        self.prefill_tokens = 65536 if self.device == "cuda" else 2048  # prompt tokens per forward pass, at most
        self.read_alone_tokens = 32  # what a forward pass of its own costs, in padded tokens (see _read_alone)
        if self.device == "cpu":
            torch.set_num_threads(cfg.cpu_threads or idle_cores())
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
        self.prefixes = PrefixTree(cfg.prefix_cache_mb * 2**20)
        self._lltokenizer, self._grammars = None, {}  # constrained decoding (`_matcher`), built on first use
        self.ort = cfg.decode_engine == "onnxruntime" and self.device == "cpu" and not cfg.load_in_4bit
        self._ort_decoder = None  # its graph built (or found) on first use
        if self.ort:
            ort_decode.check_installed()
        self.keep_ids = False  # return `Sample`s (token ids kept) instead of plain generations: online RL asks for them

    def generate(
        self, prompts: Sequence[Sequence[Message]], sampling: SamplingConfig, n: int = 1,
        tools: Sequence[dict[str, Any]] | None = None,  # not native here: the agent format puts them in the prompt
        grammar: str | None = None,
    ) -> list[list[Generation]]:
        """Compute each distinct prompt's states once, then decode every sequence of the call in one batch.

        On a CPU, reading the prompt is most of the cost, so nothing is read twice: duplicate prompts (JOSH
        siblings, n samples) are one prompt, and every prompt's states come from the prefix tree as far as it
        holds them (the shared system prompt, the conversation so far, what the model answered last turn); only
        the rest is computed. All sequences then decode together (`batch_size` at a time, of like lengths: every
        step reads each row's states as far as the longest row's), each held to `grammar` when one is given.
        """
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        room = self._context_length() - sampling.max_new_tokens
        fitted = [self._fit([{"role": m.role, "content": m.content} for m in p], room) for p in prompts]
        distinct = {ids: k for k, ids in enumerate(dict.fromkeys(fitted))}
        copies = n if sampling.temperature > 0 else 1  # greedy gives the same text every time: decode once
        rows = [distinct[ids] for ids in fitted for _ in range(copies)]
        order = sorted(range(len(rows)), key=lambda r: len(fitted[r // copies]))  # a batch of like lengths pads less
        texts: list[Generation] = [None] * len(rows)  # type: ignore[list-item]
        for start in range(0, len(rows), self.cfg.batch_size):
            chunk = order[start : start + self.cfg.batch_size]
            decoded = self._decode([list(ids) for ids in distinct], [rows[r] for r in chunk], sampling, grammar)
            for r, text in zip(chunk, decoded):
                texts[r] = text
        return [[texts[i * copies + k % copies] for k in range(n)] for i in range(len(prompts))]

    @torch.inference_mode()
    def _decode(self, prompts: list[list[int]], rows: list[int], sampling: SamplingConfig,
                grammar: str | None = None) -> list[Generation]:
        """Generations for `rows` (indices into `prompts`, repeats allowed), decoded as one batch.

        Each prompt starts from the longest prefix the tree holds. One the tree knows nothing of (a new
        conversation) reads it alone first, shortest first, and stores it: the next ones then find what they share
        with it (the system prompt). So do the prompts with most left to read (`_read_alone`). Then every row reads
        the rest of its prompt in one padded forward pass, and the batch decodes a token per step. A cache row
        holds [padding, past | padding, rest of the prompt | answer]. A sequence that ends leaves the batch (the
        others no longer carry its cache), and its states, prompt and answer, go into the tree for the
        conversation's next turn.
        """
        found = {}
        for i in sorted(set(rows), key=lambda i: len(prompts[i])):
            ids = prompts[i][:-1]
            found[i] = self.prefixes.longest(ids) or (len(ids), self._states(ids))  # a new conversation reads alone
        for i in _read_alone({i: len(prompts[i]) - hit[0] for i, hit in found.items()}, self.read_alone_tokens):
            found[i] = len(prompts[i]) - 1, self._states(prompts[i][:-1], found[i])
        past = {i: hit[0] for i, hit in found.items()}
        states = {i: hit[1] for i, hit in found.items()}
        del found
        width = max(past[i] for i in rows)  # columns before the rest of the prompts
        rest = max(len(prompts[i]) - past[i] for i in rows)
        layers = []
        for layer in range(self.model.config.num_hidden_layers):
            layers.append(_PreallocatedLayer([states[i][0][layer] for i in rows], [states[i][1][layer] for i in rows],
                                             width, rest + (0 if self.ort else sampling.max_new_tokens)))
            freed = 0
            for keys, values in states.values():  # each row's copy freed as it moves: never the batch's states twice
                freed += 2 * keys[layer].numel() * keys[layer].element_size()
                keys[layer] = values[layer] = None
            if freed >= TRIM_BYTES:  # those copies sit in glibc's heap, which keeps their pages unless trimmed
                trim()
        cache = Cache(layers=layers)
        del states, layers
        pad = self.tokenizer.pad_token_id
        lengths = [(past[i], len(prompts[i]) - past[i]) for i in rows]  # (past, rest) per row
        tokens = torch.tensor([[pad] * (rest - r) + prompts[i][p:] for i, (p, r) in zip(rows, lengths)], device=self.device)
        mask = torch.tensor([[0] * (width - p) + [1] * p + [0] * (rest - r) + [1] * r for p, r in lengths], device=self.device)
        position = torch.tensor([p + r for p, r in lengths], device=self.device)  # of each row's next token
        logits = self.model(input_ids=tokens, attention_mask=mask, position_ids=(position[:, None] - rest + torch.arange(
            rest, device=self.device)).clamp(min=0), past_key_values=cache, use_cache=True, logits_to_keep=1).logits
        steps = _TorchSteps(self.model, cache, mask, position, lengths, width, rest)
        if self.ort:
            steps = self._ort_steps(steps, sampling.max_new_tokens)
        del cache
        eos = torch.tensor(sorted(self.eos_ids), device=self.device)
        batch: list[int | None] = list(range(len(rows)))  # the row at each batch position; None once finished
        present = list(range(len(rows)))  # the row at each batch position, finished or not
        out: list[list[int]] = [[] for _ in rows]
        matchers = [self._matcher(grammar) for _ in rows] if grammar else None
        fed = 0  # answer tokens whose states are in the cache (per row: at most its answer's length)

        def keep_answers(positions: list[int]) -> None:
            for k in positions if self.prefixes.max_bytes else ():  # no tree: nothing to copy out
                said = prompts[rows[present[k]]] + out[present[k]][:fed]
                self.prefixes.store(said, steps.states(k, len(said)))

        for step in range(sampling.max_new_tokens):
            logits = logits[:, -1].float()
            if matchers:
                _allow_only(logits, [matchers[row] for row in present], eos)
            tokens = _pick(logits, sampling)
            ended = torch.isin(tokens, eos).tolist()
            for k, (row, token) in enumerate(zip(batch, tokens.tolist())):
                if row is not None:
                    out[row].append(token)
                    batch[k] = None if ended[k] else row
                    if matchers:
                        matchers[row].consume_token(token)
            finished = batch.count(None)
            if finished == len(batch) or step == sampling.max_new_tokens - 1:
                break
            if finished * 4 >= len(batch):  # finished rows leave the batch, a quarter at a time (each exit copies the cache)
                keep_answers([k for k, row in enumerate(batch) if row is None])
                keep = torch.tensor([k for k, row in enumerate(batch) if row is not None], device=self.device)
                steps.select(keep)
                tokens = tokens[keep]
                present = [present[k] for k in keep.tolist()]
                batch = [row for row in batch if row is not None]
            logits = steps.step(tokens)
            fed += 1
        keep_answers(list(range(len(present))))
        return [self._generation(ids, prompts[i]) for ids, i in zip(out, rows)]

    def _ort_steps(self, steps: "_TorchSteps", room: int) -> ort_decode.OrtDecoder:
        """The batch's states, each row's from its start with `room` after the longest, handed to ONNX Runtime."""
        if self._ort_decoder is None:
            graph = ort_decode.graph_for(self.model, self.tokenizer, self.fingerprint())
            self._ort_decoder = ort_decode.OrtDecoder(graph, torch.get_num_threads())
        said = [p + r for p, r in steps.lengths]
        layers = steps.cache.layers
        rows, heads, _, dim = layers[0]._keys.shape
        # not zeroed: GroupQueryAttention reads a row only as far as its length (NaN past it gives the same tokens)
        keys, values = (torch.empty(len(layers), rows, heads, max(said) + room, dim) for _ in range(2))
        steps.hand_over(keys, values)
        self._ort_decoder.start(keys, values, said, self.model.config.vocab_size)
        return self._ort_decoder

    def _matcher(self, grammar: str):
        """A fresh parser state for one sequence held to `grammar` (compiled once per grammar, then copied)."""
        import llguidance
        import llguidance.hf

        if self._grammars.get(grammar) is None:
            if self._lltokenizer is None:
                self._lltokenizer = llguidance.hf.from_tokenizer(self.tokenizer)
            matcher = llguidance.LLMatcher(self._lltokenizer, llguidance.LLMatcher.grammar_from_lark(grammar))
            if matcher.is_error():
                raise ConfigError(f"the agent format's grammar does not compile: {matcher.get_error()}")
            self._grammars = {grammar: matcher}  # one format per run: keep the last only
        return self._grammars[grammar].deep_copy()

    def _states(self, ids: list[int], hit: tuple[int, tuple[list[torch.Tensor], list[torch.Tensor]]] | None = None,
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The states of `ids`, read from the end of `hit` (a stored prefix) in chunks of `prefill_tokens`, and
        stored."""
        done = hit[0] if hit else 0
        cache = DynamicCache()
        for layer, (k, v) in enumerate(zip(*hit[1])) if hit else ():
            cache.update(k, v, layer)
        for start in range(done, len(ids), self.prefill_tokens):
            chunk = ids[start : start + self.prefill_tokens]
            self.model(input_ids=torch.tensor([chunk], device=self.device), use_cache=True, logits_to_keep=1,
                       position_ids=torch.arange(start, start + len(chunk), device=self.device)[None, :],
                       past_key_values=cache)
        if not cache.layers or cache.layers[0].keys is None:  # nothing to read: a one-token prompt
            return self._empty_states()
        states = [layer.keys for layer in cache.layers], [layer.values for layer in cache.layers]
        self.prefixes.store(ids, states)
        return states

    def _empty_states(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """No tokens' states, per layer [1, kv heads, 0, head dim]: what a one-token prompt has before its token."""
        config = self.model.config
        dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        shape = (1, getattr(config, "num_key_value_heads", None) or config.num_attention_heads, 0, dim)
        return tuple([torch.zeros(shape, dtype=self.model.dtype, device=self.device)
                      for _ in range(config.num_hidden_layers)] for _ in range(2))

    def _context_length(self) -> int:
        return getattr(self.model.config, "max_position_embeddings", None) or self.tokenizer.model_max_length

    def _ids(self, chat: list[dict[str, str]]) -> tuple[int, ...]:
        return tuple(self.tokenizer.apply_chat_template(  # may be longer than the model's context: `_fit` cuts it
            chat, add_generation_prompt=True, tokenize=True, return_dict=False, tokenizer_kwargs={"verbose": False}))

    def _fit(self, chat: list[dict[str, str]], room: int) -> tuple[int, ...]:
        """The prompt's token ids; when they exceed `room`, the oldest turns after the system prompt go.

        Turns go in steps of half the room the system prompt leaves, counted from the start of
        the conversation, so the conversation's next prompts start at the same turn, extend
        this one and reuse its states (the prefix tree) until the context is full again.
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
        """After a training step: states cached for earlier prompts were computed by the old weights, and an ONNX
        Runtime graph holds the old weights (decoding goes on in torch: online RL would rebuild it every step)."""
        self.prefixes.clear()
        self.ort, self._ort_decoder = False, None

    def fingerprint(self) -> str:
        return model_fingerprint(self.cfg)

    def close(self) -> None:
        self.model = None
        self.prefixes.clear()  # up to prefix_cache_mb, freed even while something still holds this object
        release()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class _TorchSteps:
    """Decode steps in torch on the prompt pass's cache: each row's states right-aligned at `width` (its past),
    then its rest right-aligned at `width + rest`, then its answer; explicit mask and positions."""

    def __init__(self, model, cache: Cache, mask: torch.Tensor, position: torch.Tensor,
                 lengths: list[tuple[int, int]], width: int, rest: int):
        self.model, self.cache, self.mask, self.position = model, cache, mask, position
        self.lengths, self.width, self.rest = lengths, width, rest  # (past, rest) per batch position

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        logits = self.model(input_ids=tokens[:, None], attention_mask=self.mask, position_ids=self.position[:, None],
                            past_key_values=self.cache, use_cache=True).logits
        self.position = self.position + 1
        return logits

    def select(self, keep: torch.Tensor) -> None:
        self.cache.batch_select_indices(keep)
        self.mask, self.position = self.mask[keep], self.position[keep]
        self.lengths = [self.lengths[k] for k in keep.tolist()]

    def states(self, row: int, length: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The row's first `length` states (its prompt, then its answer), per layer [1, heads, length, dim]."""
        spans = self._spans(row, length)
        return tuple([torch.cat([part[row : row + 1, :, span] for span in spans], dim=2) for part in parts]
                     for parts in ([layer._keys for layer in self.cache.layers],
                                   [layer._values for layer in self.cache.layers]))

    def hand_over(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Each row's prompt states copied from its start into [layers, rows, heads, capacity, dim] buffers, and
        each layer of this cache freed once copied: the batch's states are never held twice (late in an evaluation,
        64 rows of 3k tokens are 9 GB)."""
        for index, layer in enumerate(self.cache.layers):
            for row, (past, rest) in enumerate(self.lengths):
                for target, source in ((keys, layer._keys), (values, layer._values)):
                    target[index, row, :, : past + rest] = torch.cat([source[row, :, span] for span in
                                                                      self._spans(row, past + rest)], dim=1)
            layer._keys = layer._values = layer.keys = layer.values = None

    def _spans(self, row: int, length: int) -> tuple[slice, slice]:
        """Where the row's first `length` states sit: its past, right-aligned at `width`, then its rest and answer."""
        past, rest = self.lengths[row]
        return (slice(self.width - past, self.width),
                slice(self.width + self.rest - rest, self.width + self.rest + length - past - rest))


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


def _read_alone(rest: dict[int, int], overhead: int) -> list[int]:
    """The prompts to read alone rather than in the padded pass, which costs every row the longest rest: those
    above the length that minimises the padded tokens plus `overhead` per pass of their own."""
    order = sorted(rest, key=rest.get)
    cost = [k * rest[order[k - 1]] + sum(rest[i] + overhead for i in order[k:]) for k in range(1, len(order) + 1)]
    return order[cost.index(min(cost)) + 1 :] if order else []


def _allow_only(logits: torch.Tensor, matchers: list, eos: torch.Tensor) -> None:
    """Each row's logits keep only the tokens its grammar allows next (end of sequence once it is complete); a row
    whose parser has stopped (or failed) may only end."""
    words = (logits.shape[1] + 31) // 32
    masks = torch.zeros(len(matchers), words, dtype=torch.int32)
    for k, matcher in enumerate(matchers):
        if not (matcher.is_error() or matcher.is_stopped()):
            mask = torch.frombuffer(bytearray(matcher.compute_bitmask()), dtype=torch.int32)
            masks[k, : min(words, len(mask))] = mask[:words]
    allowed = ((masks[:, :, None] >> torch.arange(32, dtype=torch.int32)) & 1).flatten(1)[:, : logits.shape[1]].bool()
    ended = ~allowed.any(dim=1)
    allowed[ended.nonzero()[:, :1], eos] = True
    logits.masked_fill_(~allowed.to(logits.device), float("-inf"))


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
