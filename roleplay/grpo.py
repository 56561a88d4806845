"""Online RL against the customer and the tools (GRPO): per step, a group of whole dialogues per task from the
current policy, each scored by its environment, and one policy-gradient step toward the better ones.

A group whose dialogues all scored the same is skipped: there is nothing to tell apart. The agent's
turns are trained exactly as sampled, on the prompts they were sampled from (`models.policy_gradient`);
the customer's and the tools' words are context only. Plain Python: the Prefect task that runs this
(`tasks/rl.py`) adds caching, checkpoints on disk and progress artifacts.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.config import SamplingConfig
from envs.domain import Domain
from models.base import Sample
from models.policy_gradient import Turn, group_advantages, policy_gradient_step
from roleplay.config import RLConfig
from roleplay.rollout import AgentFormat, Episode, episode, run_episodes
from roleplay.users import UserSimulator


@dataclass(frozen=True)
class StepRecord:
    """What one RL step saw and did: the numbers a person watches while it runs."""

    step: int
    mean_reward: float  # over every dialogue of the step (shaped)
    success_rate: float
    group_spread: float  # mean over groups of the rewards' standard deviation: 0 = nothing to learn from
    groups_used: int
    groups_skipped: int  # every dialogue of the group scored the same
    loss: float
    kl: float
    turns: int
    tokens: int
    seconds: float


def step_tasks(task_ids: list[str], step: int, per_step: int) -> list[str]:
    """The tasks of one step: the list taken in turn, wrapping around."""
    return [task_ids[(step * per_step + k) % len(task_ids)] for k in range(per_step)]


def scores(groups: list[list[Episode]], cfg: RLConfig) -> tuple[list[list[float]], float]:
    """Each dialogue's environment reward less `invalid_call_penalty` per invalid call, and the success rate; each
    dialogue is scored once (tau-bench's reward replays the ground truth)."""
    results = [[(e, e.env.reward()) for e in group] for group in groups]
    rewards = [[r.reward - cfg.invalid_call_penalty * e.invalid_calls for e, r in group] for group in results]
    return rewards, statistics.fmean(r.success for group in results for _, r in group)


def play_groups(policy, user: UserSimulator, domain: Domain, fmt: AgentFormat, tasks: list[str], cfg: RLConfig,
                step: int) -> list[list[Episode]]:
    """G dialogues per task, all played together (every model call one batch); the agent's samples are kept."""
    sampling = cfg.agent_sampling.model_copy(update={"seed": _seed(cfg.agent_sampling, step)})
    user_sampling = cfg.user_sampling.model_copy(update={"seed": _seed(cfg.user_sampling, step)})
    groups = [[episode(domain, domain.scenario(t), fmt, cfg) for _ in range(cfg.group_size)] for t in tasks]
    for e in (e for group in groups for e in group):
        e.samples = []
    run_episodes([e for group in groups for e in group], policy, user, sampling, user_sampling)
    return groups


def training_turns(groups: list[list[Episode]], rewards_by_group: list[list[float]],
                   cfg: RLConfig) -> tuple[list[Turn], list[float], int]:
    """Every agent turn of the groups that tell their dialogues apart, with its dialogue's advantage; and each
    group's reward spread, and how many groups were skipped."""
    turns: list[Turn] = []
    spreads: list[float] = []
    skipped = 0
    for group, rewards in zip(groups, rewards_by_group):
        spreads.append(statistics.pstdev(rewards))
        advantages = group_advantages(rewards, cfg.scale_advantages)
        if advantages is None:
            skipped += 1
            continue
        for e, advantage in zip(group, advantages):
            turns += [Turn(s.prompt_ids, s.completion_ids, advantage) for s in e.samples]
    return turns, spreads, skipped


def rl_step(policy, optimizer, user: UserSimulator, domain: Domain, fmt: AgentFormat, task_ids: list[str],
            cfg: RLConfig, step: int) -> StepRecord:
    """Play the step's groups with the current policy, then one update on what it generated."""
    start = time.perf_counter()
    groups = play_groups(policy, user, domain, fmt, step_tasks(task_ids, step, cfg.tasks_per_step), cfg, step)
    if any(not isinstance(s, Sample) for group in groups for e in group for s in e.samples):
        raise TypeError("online RL needs the sampled tokens: a local model with keep_ids set (models/hf_backend.py)")
    rewards, success_rate = scores(groups, cfg)
    turns, spreads, skipped = training_turns(groups, rewards, cfg)
    stats = policy_gradient_step(policy.model, optimizer, turns, policy.tokenizer.pad_token_id, cfg.beta, cfg.micro_batch)
    policy.weights_changed()
    return StepRecord(step=step, mean_reward=statistics.fmean(r for group in rewards for r in group),
                      success_rate=success_rate,
                      group_spread=statistics.fmean(spreads), groups_used=len(groups) - skipped, groups_skipped=skipped,
                      loss=stats.loss, kl=stats.kl, turns=stats.turns, tokens=stats.tokens,
                      seconds=time.perf_counter() - start)


def rl_train(policy, optimizer, user: UserSimulator, domain: Domain, fmt: AgentFormat, task_ids: list[str],
             cfg: RLConfig, start_step: int = 0, after_step: Callable[[StepRecord], None] | None = None) -> list[StepRecord]:
    """Steps `start_step` .. `cfg.steps - 1`; `after_step` sees each record (checkpoints, artifacts, progress)."""
    records = []
    for step in range(start_step, cfg.steps):
        record = rl_step(policy, optimizer, user, domain, fmt, task_ids, cfg, step)
        records.append(record)
        if after_step:
            after_step(record)
    return records


def _seed(sampling: SamplingConfig, step: int) -> int:
    """Each step samples afresh, and a resumed run samples what the uninterrupted one did."""
    return (sampling.seed or 0) * 1_000_003 + step
