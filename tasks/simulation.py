"""Prefect tasks of the simulate flow: scenarios, cached JOSH shards, harvested datasets, a summary.

Each shard of scenarios is one task cached on a content hash of everything its trees depend
on (models, sampling, beam, scenarios, the source of the role-play logic). A run killed half
way and started again reads the finished shards from storage and redoes only the rest.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from statistics import mean
from typing import Any

from prefect import get_run_logger, task

from core.cache import by_fingerprint
from core.config import ModelConfig
from roleplay.config import SimulateConfig
from core.fingerprint import code_fingerprint, stable_hash
from core.types import JoshTree, Persona, Scenario, Usage
from roleplay import harvest, josh
from envs.registry import domain
from roleplay.rollout import agent_format, episode
from roleplay.users import loaded_roles
from tasks.run_report import publish_metrics, save_datasets
from tasks.retries import ENDPOINT_RETRIES


@task
def build_scenarios(bench: str, task_ids: list[str], personas: list[Persona], per_task: int, seed: int) -> list[Scenario]:
    """Each task played by `per_task` different personas, assigned by a seeded shuffle."""
    order = list(personas)
    random.Random(seed).shuffle(order)
    found = domain(bench)
    return [found.scenario(t, order[(i * per_task + k) % len(order)] if order else None)
            for i, t in enumerate(task_ids) for k in range(per_task)]


def shard_fingerprint(cfg: SimulateConfig, shard: list[Scenario], agent_fp: str, user_fp: str) -> str:
    settings = cfg.model_dump(include={"benchmark", "agent_sampling", "user_sampling", "agent_format", "agent_prompt",
                                       "constrained", "max_messages", "max_agent_steps", "beam_size"})
    bench = domain(cfg.benchmark)
    return stable_hash("josh", agent_fp, user_fp, settings, [s.model_dump(mode="json") for s in shard],
                       bench.data_version(), code_fingerprint(__name__))


@task(cache_key_fn=by_fingerprint, task_run_name="simulate-shard-{index}", **ENDPOINT_RETRIES)
def simulate_shard(cfg: SimulateConfig, shard: list[Scenario], index: int, fingerprint: str) -> list[JoshTree]:
    """JOSH trees for one shard of scenarios; every model call batches all leaves of all its trees."""
    bench = domain(cfg.benchmark)
    fmt = agent_format(bench, cfg)
    searches = [josh.Search(episode(bench, s, fmt, cfg), cfg.beam_size) for s in shard]
    with loaded_roles(cfg) as (agent, user):
        trees = josh.run_josh(searches, agent, user, cfg.agent_sampling, cfg.user_sampling)
    get_run_logger().info("shard %d: %d trees, %d nodes", index, len(trees), sum(len(t.nodes) for t in trees))
    return trees


@task
def harvest_datasets(trees: list[JoshTree], cfg: SimulateConfig, run_dir: Path) -> dict[str, int]:
    """Dialogues, trees, SFT set, DPO pairs and KTO rows, each saved as a Hugging Face dataset; row counts.
    Rows are in the format a local model is trained in (function calls written out, not native)."""
    fmt = agent_format(domain(cfg.benchmark), cfg, native=False)
    pairs = [p for t in trees for p in harvest.preference_pairs(t)]
    tables = {
        "sft": harvest.sft_examples(trees, fmt.system, cfg.sft_min_reward, fmt.view),
        "dpo": harvest.dpo_rows(pairs, fmt.system, fmt.view),
        "kto": harvest.kto_rows(pairs, fmt.system, fmt.view),
        "trees": tree_rows(trees),
    }
    counts = {**save_datasets(run_dir, [t.dialogue for t in trees], tables),
              "sft golden": sum(row["reward"] >= 1 for row in tables["sft"])}
    get_run_logger().info("saved %s to %s", counts, run_dir)
    return counts


def tree_rows(trees: list[JoshTree]) -> list[dict[str, Any]]:
    """One row per node, in josh-train's layout (messages, is_successful, is_golden) plus where the turn starts."""
    return [{"scenario_id": t.dialogue.id, "task_id": t.dialogue.scenario.task_id, "node": i,
             "messages": harvest.chat(n.messages), "turn_start": n.turn_start,
             "is_successful": n.is_successful, "is_golden": n.is_golden}
            for t in trees for i, n in enumerate(t.nodes)]


def cost(usage: Usage, model: ModelConfig) -> float | None:
    if model.usd_per_million_prompt_tokens is None or model.usd_per_million_completion_tokens is None:
        return None
    return (usage.prompt_tokens * model.usd_per_million_prompt_tokens
            + usage.completion_tokens * model.usd_per_million_completion_tokens) / 1e6


def summary_rows(trees: list[JoshTree], counts: dict[str, int], cfg: SimulateConfig, cached: int, shards: int,
                 seconds: float) -> list[dict[str, str]]:
    rewards = [t.dialogue.outcome.reward for t in trees]
    buckets = Counter(f"{r:.2f}" for r in rewards)
    tasks = len({t.dialogue.scenario.task_id for t in trees})
    terminations = Counter(t.dialogue.outcome.termination.value for t in trees)
    tokens = [sum(u.prompt_tokens + u.completion_tokens for u in (t.agent_usage, t.user_usage)) for t in trees]
    costs = [(cost(t.agent_usage, cfg.agent), cost(t.user_usage, cfg.user)) for t in trees]
    known = [a + b for a, b in costs if a is not None and b is not None]
    return [
        {"metric": "scenarios (tasks)", "value": f"{len(trees)} ({tasks})"},
        {"metric": "success rate", "value": f"{100 * mean(t.dialogue.outcome.success for t in trees):.1f}%"},
        {"metric": "average reward", "value": f"{mean(rewards):.3f}"},
        {"metric": "reward distribution", "value": ", ".join(f"{k}: {v}" for k, v in sorted(buckets.items()))},
        {"metric": "SFT examples", "value": f"{counts['sft']} ({counts['sft'] / tasks:.2f} per task; "
                                            f"{counts['sft'] - counts['sft golden']} partial paths)"},
        {"metric": "DPO pairs", "value": f"{counts['dpo']} ({counts['dpo'] / tasks:.2f} per task)"},
        {"metric": "KTO rows", "value": str(counts["kto"])},
        {"metric": "tree nodes", "value": str(counts["trees"])},
        {"metric": "terminations", "value": ", ".join(f"{k}: {v}" for k, v in sorted(terminations.items()))},
        {"metric": "tokens per dialogue (all branches)", "value": f"{mean(tokens):.0f}"},
        {"metric": "cost per dialogue", "value": f"${mean(known):.4f}" if known else "n/a (no prices configured)"},
        {"metric": "shards cached", "value": f"{cached} of {shards}"},
        {"metric": "wall time", "value": f"{seconds:.0f} s"},
    ]


@task
def publish_summary(rows: list[dict[str, str]], cfg: SimulateConfig, run_dir: Path) -> Path:
    title = (f"Simulation: `{cfg.agent.spec}` vs user `{cfg.user.spec}`, JOSH on {domain(cfg.benchmark).title} "
             f"{cfg.split}, beam {cfg.beam_size}")
    return publish_metrics(rows, cfg, run_dir, "simulation", title)
