"""Prefect task of the RL flow: a cached RL adapter per (start, settings, tasks, customer, code), trained step by step
with a checkpoint after each `save_every` steps, progress in the UI, and a reward plot.

Like the other adapters it lives under the cache dir in a folder named by its fingerprint: a rerun
is free, and a run killed half way resumes from its last checkpoint when started again.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from pydantic import BaseModel

from core.cache import build_once
from core.fingerprint import code_fingerprint, stable_hash
from core.paths import cache_dir
from envs.registry import domain
from models.rl_policy import OUTPUT, REPORT, last_checkpoint, optimizer_for, save_checkpoint, save_output, trainable_policy
from models.specs import model_fingerprint
from roleplay.config import RLConfig
from roleplay.grpo import StepRecord, rl_train
from roleplay.rollout import agent_format
from roleplay.users import loaded_user, user_fingerprint

PLOT = "rl.png"


class RLReport(BaseModel):
    path: str  # the folder to pass as `adapter=`
    steps: int
    dialogues: int
    seconds: float
    resumed_from_step: int  # 0 = started from scratch
    records: list[dict]  # one StepRecord per step


def rl_fingerprint(cfg: RLConfig, task_ids: list[str]) -> str:
    """The agent (its adapter, the starting point, by content), the customer, the settings, the tasks and the code."""
    settings = cfg.model_dump(exclude={"agent", "user"})
    return stable_hash("rl", model_fingerprint(cfg.agent), user_fingerprint(cfg.user), settings, task_ids,
                       domain(cfg.benchmark).data_version(), code_fingerprint(__name__))


def rl_dir(fingerprint: str) -> Path:
    return cache_dir() / "adapters" / f"rl-{fingerprint[:12]}"


@task(task_run_name="train-rl", persist_result=False)
def train_rl(cfg: RLConfig, task_ids: list[str], fingerprint: str) -> tuple[RLReport, bool]:
    """The RL adapter's folder (`adapter/`, `rl.json` and the reward plot), trained from the agent's own adapter (none:
    from its base), resumed or found; and whether it was found. The folder is the cache: a pruned one is trained again."""
    final = rl_dir(fingerprint)
    if final.is_dir() and not (final / REPORT).is_file():  # left unfinished by a version that trained in place
        shutil.rmtree(final)
    found = final.is_dir()
    build_once(final, lambda out: _train_rl(cfg, task_ids, out, final), resumable=True)
    return RLReport.model_validate_json((final / REPORT).read_text()), found


def _train_rl(cfg: RLConfig, task_ids: list[str], out: Path, final: Path) -> None:
    """Train in `out` (the build folder, where a killed run left its checkpoint) what will be found at `final`."""
    logger = get_run_logger()
    resume = last_checkpoint(out)
    checkpoint, done = resume if resume else (None, [])
    records = [StepRecord(**r) for r in done]
    start_path = Path(cfg.agent.adapter).expanduser() if cfg.agent.adapter else None
    policy = trainable_policy(cfg.agent.model_copy(update={"adapter": None}), start_path, cfg.lora_r, cfg.lora_alpha, checkpoint)
    optimizer = optimizer_for(policy, cfg.learning_rate, checkpoint)
    progress = create_progress_artifact(100.0 * len(records) / cfg.steps, key="rl-progress", description="RL steps (%)")
    began = time.perf_counter()

    def after_step(record: StepRecord) -> None:
        records.append(record)
        update_progress_artifact(progress, 100.0 * len(records) / cfg.steps)
        logger.info("rl step %d/%d: mean reward %.3f, success %.1f%%, spread within groups %.3f, %d groups skipped, "
                    "loss %.4f, %.0f s", record.step + 1, cfg.steps, record.mean_reward, 100 * record.success_rate,
                    record.group_spread, record.groups_skipped, record.loss, record.seconds)
        create_table_artifact([_row(r) for r in records], key="rl-steps", description="RL: reward per step")
        if len(records) % cfg.save_every == 0 or len(records) == cfg.steps:
            save_checkpoint(out, policy, optimizer, records)

    bench = domain(cfg.benchmark)
    try:
        with loaded_user(cfg.user, cfg.max_messages) as user:
            rl_train(policy, optimizer, user, bench, agent_format(bench, cfg, native=False), task_ids, cfg,
                     start_step=len(records), after_step=after_step)
        report = RLReport(path=str(final / OUTPUT), steps=len(records), seconds=time.perf_counter() - began,
                          dialogues=len(records) * cfg.tasks_per_step * cfg.group_size,
                          resumed_from_step=len(done), records=[asdict(r) for r in records])
        plot_rewards(records, out / PLOT)
        save_output(out, policy, start_path, report.model_dump())
    finally:
        policy.close()


def _row(r: StepRecord) -> dict[str, str]:
    return {"step": str(r.step + 1), "mean reward": f"{r.mean_reward:.3f}", "success": f"{100 * r.success_rate:.1f}%",
            "spread within groups": f"{r.group_spread:.3f}", "groups used": str(r.groups_used),
            "loss": f"{r.loss:.4f}", "kl": f"{r.kl:.4f}", "seconds": f"{r.seconds:.0f}"}


def plot_rewards(records: list[StepRecord], path: Path) -> Path:
    """Mean reward per step, with the spread within groups as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r.step + 1 for r in records]
    mean = [r.mean_reward for r in records]
    spread = [r.group_spread for r in records]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, mean, marker="o", label="mean reward")
    ax.fill_between(steps, [m - s for m, s in zip(mean, spread)], [m + s for m, s in zip(mean, spread)], alpha=0.2,
                    label="spread within groups")
    ax.set_xlabel("RL step")
    ax.set_ylabel("reward")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
