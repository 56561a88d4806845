"""Evaluate an agent against a user simulator on a benchmark slice (ToolWOZ, tau-bench retail or airline).

[embedded model] -> tasks -> oracle ceiling -> simulate (trials x shards, cached; local, Dask or Ray)
-> [judge, where a task's reward asks for one] -> metrics, pass^k -> dataset + report
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from roleplay.config import EvalConfig
from core.paths import new_run_dir
from core.types import Dialogue
from envs.registry import select_tasks
from flows.bootstrap import build_models
from models.specs import model_fingerprint
from tasks.runners import task_runner
from roleplay.users import user_fingerprint
from quality.metrics import EvalReport, ceiling, evaluation_metrics, pass_hat_k
from tasks.evaluation import (
    judge_dialogues,
    judging_fingerprint,
    oracle_rewards,
    publish_report,
    save_dialogues,
    simulate_dialogues,
    simulation_fingerprint,
    trial_config,
)


@flow(name="evaluate-shards", persist_result=False)
def evaluate_shards(configs: list[EvalConfig], shards: list[list[str]],
                    fingerprints: list[str]) -> list[tuple[list[Dialogue], bool]]:
    """Every shard's dialogues, and whether they came from the cache; shards run on the configured task runner."""
    futures = [simulate_dialogues.submit(c, shard, fp) for c, shard, fp in zip(configs, shards, fingerprints)]
    return [(future.result(), future.state.name == "Cached") for future in futures]


@flow(name="evaluate")
def evaluate(cfg: EvalConfig = EvalConfig()) -> EvalReport:
    build_models(cfg.agent.spec, cfg.user.spec)  # on first use; a cache hit afterwards
    task_ids = select_tasks(cfg.benchmark, cfg.split, cfg.n_tasks, cfg.seed)
    oracle = oracle_rewards(cfg.benchmark, cfg.split, cfg.reward_rule, return_state=True)
    agent_fp, user_fp = model_fingerprint(cfg.agent), user_fingerprint(cfg.user)
    fingerprint = simulation_fingerprint(cfg, task_ids, agent_fp, user_fp)
    shards = [task_ids[i : i + cfg.shard_size] for i in range(0, len(task_ids), cfg.shard_size)]
    runs = [(t, trial_config(cfg, t), shard) for t in range(cfg.trials) for shard in shards]
    fingerprints = [simulation_fingerprint(c, shard, agent_fp, user_fp, t) for t, c, shard in runs]
    done = evaluate_shards.with_options(task_runner=task_runner(cfg.runner))(
        [c for _, c, _ in runs], [shard for _, _, shard in runs], fingerprints)
    dialogues = [d for part, _ in done for d in part]
    if cfg.judge and not all(d.outcome.judged for d in dialogues):
        dialogues = judge_dialogues(cfg, dialogues, judging_fingerprint(cfg, fingerprints))

    per_task = oracle.result()
    run_dir = new_run_dir(cfg.runs_dir, cfg.run_name or f"evaluate-{datetime.now():%Y%m%d-%H%M%S}-{fingerprint[:8]}")
    report = EvalReport(
        metrics=evaluation_metrics(dialogues),
        ceiling=ceiling([per_task[i] for i in task_ids]),
        split_ceiling=ceiling(list(per_task.values())),
        task_ids=task_ids,
        agent_fingerprint=agent_fp,
        user_fingerprint=user_fp,
        run_dir=str(run_dir),
        trials=cfg.trials,
        pass_hat_k=pass_hat_k(dialogues, cfg.trials),
        cached=all(was_cached for _, was_cached in done),
    )
    save_dialogues(dialogues, run_dir)
    publish_report(report, cfg)
    return report
