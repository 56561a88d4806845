"""Train the embedded model from scratch: one short file, every knob in `BootstrapConfig`.

Each example is the agent's view of a human dialogue (tools in the system prompt, tool results
as APIRETURN turns). The loss covers every spoken turn and call of both parties, not the system
prompt or tool results: on a CPU the forward pass is the cost, and each extra target token is
signal for free. Training stops when the token budget is spent: what the model learns depends
on the tokens it saw, not on how fast a shared machine happened to be (a GPU spends the
same budget in about a minute, 2 shared CPU cores in about 45). A wall-clock cap is only a safety.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from core.errors import ConfigError
from core.types import Dialogue, Message
from envs.toolwoz import prompts
from formats import react
from models.bootstrap_config import BootstrapConfig
from models.tokenizer import build_tokenizer, cased_words

IGNORE = -100
_VIEW_TOKENS = 8  # a system prompt's first tokens tell the agent's view from the customer's


@dataclass
class TrainReport:
    steps: int = 0
    tokens: int = 0  # tokens processed (context + targets, no padding)
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)  # mean loss per logging interval
    stopped_by: str = ""  # "tokens" (the budget), "max_steps" or "max_seconds" (the safety cap: undertrained)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def agent_view(dialogue: Dialogue, tool_schemas: list[dict]) -> list[Message]:
    """The conversation one dialogue teaches: the agent's side (compact prompt, ReAct format), the customer's turns included."""
    return react.agent_view(react.system_prompt(prompts.COMPACT_INSTRUCTIONS, tool_schemas, "compact"), list(dialogue.messages))


def is_target(message: Message) -> bool:
    """What the model learns to write: both parties' turns; the system prompt and tool results are given."""
    return message.role in ("assistant", "user") and not message.content.startswith(react.APIRETURN)


def encode_windows(tokenizer, messages: list[Message], block: int, carry: int) -> list[tuple[list[int], list[int]]]:
    """Token ids and labels (target turns only), cut into windows that each start with the system prompt.

    Like inference, which drops the oldest turns after the system prompt when the context is
    full, a new window starts with the latest turns of the previous one (up to `carry` tokens)
    as context, without training on them twice. Carried context costs compute and teaches
    nothing new, so a short carry trains on more dialogues per minute. Messages are rendered
    one at a time through the chat template, which concatenates them, so the ids are exactly
    what generation sees.
    """
    pieces = []
    for m in messages:
        ids = tokenizer.apply_chat_template([{"role": m.role, "content": m.content}], tokenize=True, return_dict=False)
        labels = [IGNORE] + ids[1:] if is_target(m) else [IGNORE] * len(ids)
        pieces.append((ids, labels))
    system, rest = pieces[0], pieces[1:]
    windows, current = [], []
    for piece in rest:
        if current and len(system[0]) + sum(len(i) for i, _ in current) + len(piece[0]) > block:
            windows.append([system, *current])
            room, carried = carry, []
            for ids, _ in reversed(current):
                room -= len(ids)
                if room < 0:
                    break
                carried.insert(0, (ids, [IGNORE] * len(ids)))
            current = carried
        current.append(piece)
    windows.append([system, *current])
    out = []
    for window in windows:
        ids = [t for i, _ in window for t in i][:block]  # a single turn longer than the window keeps its start
        labels = [t for _, l in window for t in l][:block]
        if any(x != IGNORE for x in labels):
            out.append((ids, labels))
    return out


def build_model(cfg: BootstrapConfig, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        intermediate_size=cfg.intermediate,
        max_position_embeddings=cfg.block_size,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(config)


def _batches(windows, batch_size: int, rng: random.Random):
    """Endless shuffled batches of windows of one view (same system prompt start) and similar length.

    One view: the batch computes its shared system prompt once (`_shared_prefix`). Similar
    length: little padding.
    """
    while True:
        order = windows[:]
        rng.shuffle(order)
        for start in range(0, len(order), batch_size * 50):
            chunk = sorted(order[start : start + batch_size * 50], key=lambda w: (w[0][:_VIEW_TOKENS], len(w[0])))
            batches = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
            rng.shuffle(batches)
            yield from batches


def _shared_prefix(batch) -> int:
    """Leading tokens every window of the batch has in common and learns nothing from (a system prompt).

    They are computed once for the whole batch: an agent view's tool list is a quarter of
    its window.
    """
    rows = [ids for ids, _ in batch]
    first_target = min(next((k for k, x in enumerate(labels) if x != IGNORE), len(labels)) for _, labels in batch)
    common = next((k for k, column in enumerate(zip(*rows)) if len(set(column)) > 1), min(map(len, rows)))
    return max(0, min(common, first_target - 1)) if len(batch) > 1 else 0


def _collate(batch, pad_id: int):
    """Padded tensors of the batch, and how many leading tokens its rows share (`_shared_prefix`)."""
    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id)
    labels = torch.full((len(batch), width), IGNORE)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (i, l) in enumerate(batch):
        ids[row, : len(i)] = torch.tensor(i)
        labels[row, : len(l)] = torch.tensor(l)
        mask[row, : len(i)] = 1
    return ids, labels, mask, _shared_prefix(batch)


def _lr(cfg: BootstrapConfig, step: int, progress: float) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def _loss(model, ids, labels, mask, shared: int = 0):
    """Next-token loss, with the vocabulary projection computed at target positions only (a large share of the FLOPs).

    The first `shared` tokens, the same in every row and predicting no target, run once; the
    rows continue from their key/value states, and gradients flow back through them.
    """
    past = None
    if shared:
        past = model.model(input_ids=ids[:1, :shared], use_cache=True).past_key_values
        past.batch_repeat_interleave(ids.shape[0])
    out = model.model(input_ids=ids[:, shared:], attention_mask=mask, past_key_values=past, use_cache=False)
    hidden = out.last_hidden_state[:, :-1]
    targets = labels[:, shared + 1 :]
    keep = targets != IGNORE
    return torch.nn.functional.cross_entropy(model.lm_head(hidden[keep]).float(), targets[keep])


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def use_bf16(cfg: BootstrapConfig, on: str = "cpu") -> bool:
    """bfloat16 autocast when asked, or by default where the hardware computes it natively (1.3-1.45x tokens/s here)."""
    if cfg.bf16 is not None:
        return cfg.bf16
    return torch.cuda.is_bf16_supported() if on == "cuda" else torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _stop_reason(cfg: BootstrapConfig, report: TrainReport, elapsed: float) -> str:
    if report.tokens >= cfg.budget_tokens:
        return "tokens"
    if report.steps == cfg.max_steps:
        return "max_steps"
    return "max_seconds" if elapsed >= cfg.max_seconds else ""


def train(model, tokenizer, windows, cfg: BootstrapConfig, log_every: int = 20) -> TrainReport:
    rng = random.Random(cfg.seed)
    on = device()
    bf16 = use_bf16(cfg, on)
    model.to(on)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    report, recent = TrainReport(), []
    model.train()
    start = time.perf_counter()
    bar = tqdm(total=cfg.budget_tokens, desc="training embedded model", unit="tok", unit_scale=True)
    for batch in _batches(windows, cfg.batch_size, rng):
        elapsed = time.perf_counter() - start
        report.stopped_by = _stop_reason(cfg, report, elapsed)
        if report.stopped_by:
            break
        for group in optimizer.param_groups:
            group["lr"] = _lr(cfg, report.steps, report.tokens / cfg.budget_tokens)
        *tensors, shared = _collate(batch, tokenizer.pad_token_id)
        ids, labels, mask = (t.to(on) for t in tensors)
        with torch.autocast(on, dtype=torch.bfloat16, enabled=bf16):
            loss = _loss(model, ids, labels, mask, shared)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        tokens = int(mask.sum())
        report.steps += 1
        report.tokens += tokens
        recent.append(loss.item())
        if report.steps % log_every == 0:
            report.losses.append(sum(recent) / len(recent))
            recent = []
            bar.set_postfix(loss=f"{report.losses[-1]:.3f}", tok_s=f"{report.tokens / elapsed:.0f}")
        bar.update(tokens)
    if recent:
        report.losses.append(sum(recent) / len(recent))
    bar.close()
    report.seconds = time.perf_counter() - start
    if report.stopped_by == "max_seconds":
        print(f"warning: the embedded model stopped at the {cfg.max_seconds:.0f} s safety cap after "
              f"{report.tokens:,} of {cfg.budget_tokens:,} tokens; it is undertrained", file=sys.stderr)
    model.to("cpu").eval()
    return report


def train_embedded(dialogues: list[Dialogue], tool_schemas: list[dict], cfg: BootstrapConfig, out: Path) -> TrainReport:
    """Tokenizer, model and training from scratch; saves a standard Hugging Face model dir at `out`."""

    views = [agent_view(d, tool_schemas) for d in dialogues]
    texts = (m.content for view in views for m in view)
    tokenizer = build_tokenizer(cfg.block_size, texts=texts, vocab_size=cfg.vocab_size, keep_case=cased_words(tool_schemas))
    windows = [w for view in views for w in encode_windows(tokenizer, view, cfg.block_size, cfg.carry_tokens)]
    if not windows:
        raise ConfigError(f"block_size={cfg.block_size} leaves no room for a turn after the system prompts")
    model = build_model(cfg, tokenizer)
    report = train(model, tokenizer, windows, cfg)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return report


def build(cfg: BootstrapConfig, corpus_path: Path, out: Path) -> None:
    """The embedded model into `out`: the human transcripts, trained, with a report.

    This module's import closure is the model's code fingerprint (`models/embedded.py`), so the
    build's messages live there, not here.
    """
    from core.records import read_jsonl
    from envs.toolwoz.data import load_toolwoz

    data, corpus = load_toolwoz(), read_jsonl(corpus_path)
    report = train_embedded(corpus, data.tool_schemas, cfg, out)
    (out / "bootstrap.json").write_text(
        json.dumps({"config": cfg.model_dump(), "device": device(), "bf16": use_bf16(cfg, device()),
                    "dialogues": len(corpus),
                    **asdict(report), "tokens_per_s": report.tokens_per_s}, indent=1)
    )
