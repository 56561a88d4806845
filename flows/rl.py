"""Online RL (GRPO) from a starting adapter: groups of dialogues against the customer and the tools, scored by
the environment, each step moving the policy toward the better ones.

[embedded model] -> training tasks -> (G dialogues per task -> advantages -> policy-gradient step) x steps
-> RL adapter (cached; checkpoints, resumable) + reward plot
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.bootstrap import build_models
from flows.train import Adapter
from roleplay.config import RLConfig
from envs.registry import select_tasks
from tasks.rl import PLOT, rl_dir, rl_fingerprint, train_rl


@flow(name="rl")
def rl(cfg: RLConfig = RLConfig()) -> Adapter:
    """RL from the agent as configured: `agent.adapter` (an SFT adapter) is the starting point, else its base."""
    build_models(cfg.agent.spec, cfg.user.spec)
    task_ids = select_tasks(cfg.benchmark, cfg.split, cfg.n_tasks, cfg.seed, cfg.task_draw)
    fingerprint = rl_fingerprint(cfg, task_ids)
    report, found = train_rl(cfg, task_ids, fingerprint)
    first, last = report.records[0], report.records[-1]
    create_markdown_artifact(
        f"# RL adapter\n`{report.path}`\n\n- from: `{cfg.agent.adapter or cfg.agent.spec}`\n"
        f"- {report.steps} steps x {cfg.tasks_per_step} tasks x {cfg.group_size} dialogues ({report.seconds:.0f} s; "
        f"resumed from step {report.resumed_from_step})\n- mean reward, first step -> last: {first['mean_reward']:.3f} "
        f"-> {last['mean_reward']:.3f}\n- plot: `{rl_dir(fingerprint) / PLOT}`\n",
        key="rl-adapter", description="RL training")
    return Adapter(kind="rl", path=report.path, fingerprint=fingerprint, rows=report.dialogues, steps=report.steps,
                   cached=found)
