"""The policy-gradient step of online RL (GRPO): agent turns as generated, each weighted by its dialogue's advantage.

Why not trl's `GRPOTrainer`: its `rollout_func` takes one completion per prompt, so a dialogue would
have to be one sequence, trained as if the agent had seen every earlier turn in full. Here each agent
turn is trained on the exact prompt it was sampled from (its view of the record, cut to fit the
context, as `Sample.prompt_ids` kept it) and on exactly the tokens it sampled, and the customer's
and the tools' tokens are never targets: they only appear inside prompts.

One update per batch of fresh samples (on-policy), so GRPO's clipped ratio is 1 and its gradient is
the plain policy gradient: loss = -sum(advantage * log p(token)) / tokens, plus `beta` times the k3
estimate of the KL to the reference (the policy with its LoRA adapter switched off). No Prefect.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Turn:
    """One agent turn to train on: the prompt it saw, what it sampled, and its dialogue's advantage."""

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    advantage: float


@dataclass(frozen=True)
class StepStats:
    loss: float
    kl: float  # mean per target token (0 without a reference)
    turns: int
    tokens: int


def group_advantages(rewards: Sequence[float], scale: bool = True) -> list[float] | None:
    """Each dialogue's reward minus its group's mean (over the group's spread when `scale`), or None when every
    reward in the group is the same: such a group says nothing about which behaviour is better."""
    mean = statistics.fmean(rewards)
    spread = statistics.pstdev(rewards)
    if spread < 1e-9:
        return None
    return [(r - mean) / (spread if scale else 1.0) for r in rewards]


def policy_gradient_step(model, optimizer, turns: Sequence[Turn], pad_id: int, beta: float = 0.0,
                         micro_batch: int = 8, max_grad_norm: float = 1.0) -> StepStats:
    """One optimizer step on `turns` (micro-batches accumulate); every completion token counts once."""
    tokens = sum(len(t.completion_ids) for t in turns)
    if not tokens:
        return StepStats(0.0, 0.0, 0, 0)
    model.train()
    optimizer.zero_grad()
    total_loss = total_kl = 0.0
    for start in range(0, len(turns), micro_batch):
        chunk = turns[start : start + micro_batch]
        ids, mask, targets = _pack(chunk, pad_id, next(model.parameters()).device)
        logp = _token_log_probs(model, ids, mask, targets.shape[1])
        advantage = torch.tensor([t.advantage for t in chunk], device=logp.device)[:, None]
        loss = -(advantage * logp * targets).sum() / tokens
        if beta:
            with torch.no_grad(), model.disable_adapter():
                reference = _token_log_probs(model, ids, mask, targets.shape[1])
            delta = reference - logp
            kl = ((torch.exp(delta) - delta - 1) * targets).sum() / tokens
            loss = loss + beta * kl
            total_kl += kl.item()
        loss.backward()
        total_loss += loss.item()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_grad_norm)
    optimizer.step()
    model.eval()
    return StepStats(total_loss, total_kl, len(turns), tokens)


def _pack(turns: Sequence[Turn], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded prompt + completion rows, their attention mask, and a mask that is 1 exactly where a
    completion token is predicted, over the last positions only: no row predicts a completion token earlier."""
    width = max(len(t.prompt_ids) + len(t.completion_ids) for t in turns)
    first = min(len(t.prompt_ids) for t in turns) - 1  # the first position that predicts a completion token
    ids = torch.full((len(turns), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(turns), width), dtype=torch.long)
    targets = torch.zeros((len(turns), width - 1 - first))
    for row, t in enumerate(turns):
        sequence = [*t.prompt_ids, *t.completion_ids]
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
        targets[row, len(t.prompt_ids) - 1 - first : len(sequence) - 1 - first] = 1
    return ids.to(device), mask.to(device), targets.to(device)


def _token_log_probs(model, ids: torch.Tensor, mask: torch.Tensor, last: int) -> torch.Tensor:
    """log p of each of the `last` tokens of every row given the tokens before it: [rows, last]. Logits are
    computed for those positions only (a prompt is long, a turn short: most of the vocabulary work is saved)."""
    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=last + 1).logits[:, :-1].float()
    return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, -last:, None]).squeeze(-1)
