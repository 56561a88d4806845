"""Per-run metrics over dialogues: what an evaluation reports, as plain functions."""

from __future__ import annotations

from collections import Counter
from math import comb
from statistics import mean

import numpy as np
from pydantic import BaseModel

from core.types import Dialogue


class Ceiling(BaseModel):
    """Replaying the ground-truth calls: the best score an agent can reach on these tasks."""

    tasks: int
    reward: float
    success_rate: float


class EvalMetrics(BaseModel):
    dialogues: int
    success_rate: float
    avg_reward: float
    valid_call_rate: float | None  # None when no call was attempted at all
    api_calls: int
    mean_turns: float
    prompt_tokens: int
    completion_tokens: int
    terminations: dict[str, int]
    reward_basis: dict[str, float] = {}  # τ²-bench: the share of dialogues that passed each part of the reward
    not_judged: int = 0  # dialogues whose reward needs an LLM judge that was not configured


class EvalReport(BaseModel):
    """What one evaluation run found, with what it was run on; saved as the run's metrics.json."""

    metrics: EvalMetrics
    ceiling: Ceiling  # on the evaluated tasks
    split_ceiling: Ceiling
    task_ids: list[str]
    agent_fingerprint: str  # which weights: `embedded` names a different model after a retrain
    user_fingerprint: str
    run_dir: str
    cached: bool = False  # its dialogues were read from storage
    trials: int = 1  # conversations per task
    pass_hat_k: dict[int, float] = {}  # k -> chance that k trials of a task all succeed, averaged over tasks


def evaluation_metrics(dialogues: list[Dialogue]) -> EvalMetrics:
    outcomes = [d.outcome for d in dialogues]
    calls = sum(o.api_calls for o in outcomes)
    valid = calls - sum(o.invalid_calls for o in outcomes)
    return EvalMetrics(
        dialogues=len(outcomes),
        success_rate=mean(o.success for o in outcomes),
        avg_reward=mean(o.reward for o in outcomes),
        valid_call_rate=valid / calls if calls else None,
        api_calls=calls,
        mean_turns=mean(o.turns for o in outcomes),
        prompt_tokens=sum(o.prompt_tokens for o in outcomes),
        completion_tokens=sum(o.completion_tokens for o in outcomes),
        terminations=dict(Counter(o.termination.value for o in outcomes)),
        reward_basis={part: mean(o.reward_basis[part] for o in outcomes if part in o.reward_basis)
                      for part in sorted({p for o in outcomes for p in o.reward_basis})},
        not_judged=sum(not o.judged for o in outcomes),
    )


def pass_hat_k(dialogues: list[Dialogue], trials: int) -> dict[int, float]:
    """tau-bench's pass^k for k = 1..trials: per task, C(c, k) / C(n, k) with c of its n trials successful
    (the chance that k trials drawn without replacement all succeed), averaged over tasks."""
    wins: dict[str, list[bool]] = {}
    for d in dialogues:
        wins.setdefault(d.scenario.task_id, []).append(d.outcome.success)
    return {k: mean(comb(sum(w), k) / comb(len(w), k) for w in wins.values()) for k in range(1, trials + 1)}


def ceiling(rewards: list[float]) -> Ceiling:
    return Ceiling(tasks=len(rewards), reward=mean(rewards), success_rate=mean(r == 1.0 for r in rewards))


def bootstrap_mean(values: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean with a 95% percentile-bootstrap interval over the items (tasks)."""
    x = np.asarray(values, dtype=float)
    if not len(x):
        return 0.0, 0.0, 0.0
    means = x[np.random.default_rng(seed).integers(0, len(x), (resamples, len(x)))].mean(axis=1)
    return float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def paired_difference(after: list[float], before: list[float], resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float, float]:
    """(mean of after - before, low, high), resampling tasks with both values kept together (paired
    bootstrap): an interval that excludes 0 is a significant change on these tasks."""
    return bootstrap_mean([a - b for a, b in zip(after, before, strict=True)], resamples, seed)


def text_diversity(texts: list[str], max_n: int = 5, max_pairs: int = 2000, seed: int = 0) -> dict[str, float | int]:
    """Self-talk's diversity of a batch of utterances: unique words, unique word n-grams (n <= max_n), and
    1 - mean ROUGE-L over pairs of texts (a seeded sample of at most max_pairs pairs)."""
    import random

    from envs.workflows.progress import rouge_l

    tokens = [t.lower().split() for t in texts]
    grams = {tuple(words[i : i + n]) for words in tokens for n in range(1, max_n + 1) for i in range(len(words) - n + 1)}
    pairs = [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))]
    pairs = random.Random(seed).sample(pairs, min(max_pairs, len(pairs)))
    overlap = mean(rouge_l(texts[i], texts[j]) for i, j in pairs) if pairs else 0.0
    return {"unique_words": len({w for words in tokens for w in words}), "unique_ngrams": len(grams),
            "rouge_l_diversity": round(1 - overlap, 4)}
