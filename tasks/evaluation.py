"""Prefect tasks of the evaluation flow, each named for what it produces.

Caching is declared here: a task's cache key is a content hash of everything its result
depends on (model weights, sampling settings, tasks, and the source of the logic), so a
rerun with the same inputs reads the stored result and a changed input recomputes.
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from core.cache import by_fingerprint, stored_result
from roleplay.config import EvalConfig, RolePlayConfig
from core.fingerprint import code_fingerprint, stable_hash
from core.types import Dialogue
from quality.judge import judge_assertions
from quality.metrics import EvalReport
from models.specs import model_fingerprint
from roleplay import rollout
from envs.registry import domain
from roleplay.rollout import agent_format, episode
from tasks.retries import ENDPOINT_RETRIES
from tasks.run_report import markdown_table, save_datasets
from roleplay.users import loaded_roles


@task(cache_key_fn=lambda _, p: stored_result(stable_hash("oracle", p["bench"], p["split"], p["rule"],
                                                          domain(p["bench"]).data_version(), code_fingerprint("envs.registry"))))
def oracle_rewards(bench: str, split: str, rule: str | None = None) -> dict[str, float]:
    """Replay every task's ground truth: the per-task reward ceiling of the split."""
    found = domain(bench)
    return {i: found.oracle_reward(i, rule) for i in found.task_ids(split)}


def trial_config(cfg: EvalConfig, trial: int) -> EvalConfig:
    """Trial t samples with every seed moved by t (trial 0 is the configured run)."""
    def moved(sampling):
        return sampling if sampling.seed is None else sampling.model_copy(update={"seed": sampling.seed + trial})

    return cfg.model_copy(update={"agent_sampling": moved(cfg.agent_sampling), "user_sampling": moved(cfg.user_sampling)})


def simulation_fingerprint(cfg: RolePlayConfig, task_ids: list[str], agent_fp: str, user_fp: str, trial: int = 0) -> str:
    """Trial t > 0 is a key of its own even without seeds (unseeded sampling: each trial a new draw)."""
    settings = cfg.model_dump(include={"benchmark", "agent_sampling", "user_sampling", "agent_format", "agent_prompt",
                                       "reward_rule", "constrained", "max_messages", "max_agent_steps"})
    bench = domain(cfg.benchmark)
    return stable_hash("simulate", agent_fp, user_fp, settings, task_ids, bench.data_version(),
                       code_fingerprint(__name__), *([trial] if trial else []))


@task(cache_key_fn=by_fingerprint, **ENDPOINT_RETRIES)
def simulate_dialogues(cfg: EvalConfig, task_ids: list[str], fingerprint: str) -> list[Dialogue]:
    """Play agent against user simulator on each task; the heavy step, cached on `fingerprint`."""
    bench = domain(cfg.benchmark)
    fmt = agent_format(bench, cfg)
    episodes = [episode(bench, bench.scenario(i), fmt, cfg) for i in task_ids]
    progress = create_progress_artifact(0.0, key="evaluate-progress", description="Dialogues finished (%)")

    def report(done: int, total: int) -> None:
        update_progress_artifact(progress, 100.0 * done / total)

    with loaded_roles(cfg) as (agent, user):
        rollout.run_episodes(episodes, agent, user, cfg.agent_sampling, cfg.user_sampling, on_progress=report)
    return [e.to_dialogue(cfg.agent.spec, cfg.user.spec) for e in episodes]


def judging_fingerprint(cfg: EvalConfig, simulations: list[str]) -> str:
    """The judged dialogues depend on the simulations' (their fingerprints) and the judge."""
    return stable_hash("judge", simulations, model_fingerprint(cfg.judge), code_fingerprint("quality.judge"))


@task(cache_key_fn=by_fingerprint, **ENDPOINT_RETRIES)
def judge_dialogues(cfg: EvalConfig, dialogues: list[Dialogue], fingerprint: str) -> list[Dialogue]:
    """The dialogues, those whose reward needs a judge judged by `cfg.judge`; cached on the dialogues' fingerprint."""
    from models.loading import load_model

    bench = domain(cfg.benchmark)
    judge = load_model(cfg.judge)
    try:
        return judge_assertions(dialogues, [bench.assertions(d.scenario.task_id) for d in dialogues], judge)
    finally:
        judge.close()


@task
def save_dialogues(dialogues: list[Dialogue], run_dir: Path) -> Path:
    """The dialogues as a Hugging Face dataset (and JSONL for eyeballing)."""
    save_datasets(run_dir, dialogues, {})
    get_run_logger().info("saved %d dialogues to %s", len(dialogues), run_dir / "dialogues")
    return run_dir / "dialogues"


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
        *([{"metric": "reward basis (share passed)",
            "value": ", ".join(f"{k} {pct(v)}" for k, v in m.reward_basis.items())}] if m.reward_basis else []),
        *([{"metric": "not judged (no judge model, or no verdict)", "value": str(m.not_judged)}] if m.not_judged else []),
        {"metric": f"pass^k ({report.trials} trials per task)",
         "value": ", ".join(f"pass^{k} {pct(v)}" for k, v in sorted(report.pass_hat_k.items())) or "n/a"},
    ]


@task
def publish_report(report: EvalReport, cfg: EvalConfig) -> Path:
    """Table + markdown artifacts in the Prefect UI; report.md, metrics.json, config.json in the run folder."""
    table = metrics_table(report)
    title = domain(cfg.benchmark).title
    create_table_artifact(table, key="evaluation-metrics", description=f"{cfg.agent.spec} on {title} {cfg.split}")
    lines = [
        f"# Evaluation: `{cfg.agent.spec}` vs user `{cfg.user.spec}`",
        f"{title} `{cfg.split}`, {len(report.task_ids)} tasks x {report.trials} trials (seed {cfg.seed}); "
        f"run folder `{report.run_dir}`. Reward: {domain(cfg.benchmark).reward_rule(cfg.reward_rule)}.",
        "",
        *markdown_table(["metric", "value"], [(row["metric"], row["value"]) for row in table]),
    ]
    markdown = "\n".join(lines) + "\n"
    create_markdown_artifact(markdown, key="evaluation-summary", description="Evaluation summary")
    run_dir = Path(report.run_dir)
    (run_dir / "report.md").write_text(markdown)
    (run_dir / "metrics.json").write_text(report.model_dump_json(indent=1))
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=1))
    return run_dir / "report.md"
