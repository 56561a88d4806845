"""Prefect tasks of the evaluation flow, each named for what it produces.

Caching is declared here: a task's cache key is a content hash of everything its result
depends on (model weights, sampling settings, tasks, and the source of the logic), so a
rerun with the same inputs reads the stored result and a changed input recomputes.
"""

from __future__ import annotations

import random
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from core import records
from core.config import EvalConfig
from core.fingerprint import ENV_CODE, SIMULATION_CODE, code_hash, stable_hash
from core.types import Dialogue, Scenario
from envs.toolwoz import data as toolwoz_data, load_toolwoz, oracle_reward
from quality.metrics import EvalReport
from tasks import react, rollout
from tasks.retries import ENDPOINT_RETRIES
from tasks.users import loaded_roles


@task
def select_tasks(split: str, n: int, seed: int) -> list[str]:
    """A seeded sample of the split's task ids (the whole split when n exceeds it)."""
    ids = load_toolwoz().splits[split]
    return sorted(random.Random(seed).sample(ids, min(n, len(ids))))


@task(cache_key_fn=lambda _, p: stable_hash("oracle", p["split"], toolwoz_data.data_version(), code_hash(*ENV_CODE)))
def oracle_rewards(split: str) -> dict[str, float]:
    """Replay every task's ground-truth calls: the per-task reward ceiling of the split."""
    data = load_toolwoz()
    return {t.id: oracle_reward(data, t).reward for t in data.split(split)}


def scenario(data, task_id: str, persona=None) -> Scenario:
    return Scenario(domain="toolwoz", task_id=task_id, instruction=data.tasks[task_id].instruction, persona=persona)


def simulation_fingerprint(cfg: EvalConfig, task_ids: list[str], agent_fp: str, user_fp: str) -> str:
    settings = cfg.model_dump(include={"agent_sampling", "user_sampling", "agent_prompt", "max_messages", "max_agent_steps"})
    return stable_hash(
        "simulate", agent_fp, user_fp, settings, task_ids, toolwoz_data.data_version(), code_hash(*SIMULATION_CODE)
    )


@task(cache_key_fn=lambda _, p: p["fingerprint"], **ENDPOINT_RETRIES)
def simulate_dialogues(cfg: EvalConfig, task_ids: list[str], fingerprint: str) -> list[Dialogue]:
    """Play agent against user simulator on each task; the heavy step, cached on `fingerprint`."""
    data = load_toolwoz()
    system = react.system_prompt(data.tool_schemas, cfg.agent_prompt)
    episodes = [rollout.toolwoz_episode(data, scenario(data, i), system, cfg) for i in task_ids]
    progress = create_progress_artifact(0.0, key="evaluate-progress", description="Dialogues finished (%)")

    def report(done: int, total: int) -> None:
        update_progress_artifact(progress, 100.0 * done / total)

    with loaded_roles(cfg) as (agent, user):
        rollout.run_episodes(episodes, agent, user, cfg.agent_sampling, cfg.user_sampling, on_progress=report)
    return [e.to_dialogue(cfg.agent.spec, cfg.user.spec) for e in episodes]


@task
def save_dialogues(dialogues: list[Dialogue], run_dir: Path) -> Path:
    """The dialogues as a Hugging Face dataset (and JSONL for eyeballing)."""
    path = run_dir / "dialogues"
    records.dialogues_to_dataset(dialogues).save_to_disk(str(path))
    records.write_jsonl(dialogues, run_dir / "dialogues.jsonl")
    get_run_logger().info("saved %d dialogues to %s", len(dialogues), path)
    return path


def metrics_table(report: EvalReport) -> list[dict[str, str]]:
    """The report as display rows: the CLI table, the Prefect table artifact, report.md."""

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    m, here, split = report.metrics, report.ceiling, report.split_ceiling
    return [
        {"metric": "dialogues", "value": str(m.dialogues)},
        {"metric": "success rate", "value": pct(m.success_rate)},
        {"metric": "average reward", "value": f"{m.avg_reward:.3f}"},
        {"metric": "valid call rate", "value": f"{pct(m.valid_call_rate)} of {m.api_calls} calls"},
        {"metric": "mean turns", "value": f"{m.mean_turns:.1f}"},
        {"metric": "oracle ceiling (these tasks)", "value": f"{pct(here.success_rate)} success, {here.reward:.3f} reward"},
        {"metric": "oracle ceiling (whole split)",
         "value": f"{pct(split.success_rate)} success, {split.reward:.3f} reward over {split.tasks} tasks"},
        {"metric": "tokens (prompt / completion)", "value": f"{m.prompt_tokens} / {m.completion_tokens}"},
        {"metric": "terminations", "value": ", ".join(f"{k}: {v}" for k, v in sorted(m.terminations.items()))},
    ]


@task
def publish_report(report: EvalReport, cfg: EvalConfig) -> Path:
    """Table + markdown artifacts in the Prefect UI; report.md, metrics.json, config.json in the run folder."""
    table = metrics_table(report)
    create_table_artifact(table, key="evaluation-metrics", description=f"{cfg.agent.spec} on ToolWOZ {cfg.split}")
    lines = [
        f"# Evaluation: `{cfg.agent.spec}` vs user `{cfg.user.spec}`",
        f"ToolWOZ `{cfg.split}`, {len(report.task_ids)} tasks (seed {cfg.seed}); run folder `{report.run_dir}`.",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {row['metric']} | {row['value']} |" for row in table),
    ]
    markdown = "\n".join(lines) + "\n"
    create_markdown_artifact(markdown, key="evaluation-summary", description="Evaluation summary")
    run_dir = Path(report.run_dir)
    (run_dir / "report.md").write_text(markdown)
    (run_dir / "metrics.json").write_text(report.model_dump_json(indent=1))
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=1))
    return run_dir / "report.md"
