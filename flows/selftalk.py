"""Self-talk on a workflow domain: training data from a workflow file, no database or goals needed.

workflow file -> personas -> scenarios (intentions x personas) -> self-talk dialogues (cached)
              -> datasets (dialogues, SFT) -> summary: depth, ended rate, character consistency, diversity
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow
from pydantic import BaseModel

from core.config import SelfTalkConfig
from core.paths import new_run_dir
from envs.workflows import load_workflow
from flows.bootstrap import build_models
from flows.personas import personas
from tasks.selftalk import (publish_summary, save_selftalk, scenarios, selftalk_dialogues, selftalk_fingerprint,
                            summary_rows)


class SelfTalkReport(BaseModel):
    run_dir: str
    counts: dict[str, int]
    summary: list[dict[str, str]]
    cached: bool


@flow(name="selftalk")
def selftalk_flow(cfg: SelfTalkConfig = SelfTalkConfig()) -> SelfTalkReport:
    workflow = load_workflow(cfg.workflow)
    build_models(cfg.agent.spec, cfg.user.spec, cfg.manager.spec if cfg.manager else None)
    shard = scenarios(workflow, personas(cfg.personas, cfg.runs_dir), cfg.n_dialogues, cfg.seed)
    state = selftalk_dialogues(cfg, workflow, shard, selftalk_fingerprint(cfg, workflow, shard), return_state=True)
    dialogues = state.result()
    run_dir = new_run_dir(cfg.runs_dir, cfg.run_name or f"selftalk-{datetime.now():%Y%m%d-%H%M%S}")
    counts = save_selftalk(dialogues, workflow, run_dir)
    rows = summary_rows(dialogues, state.name == "Cached")
    publish_summary(rows, cfg, run_dir)
    return SelfTalkReport(run_dir=str(run_dir), counts=counts, summary=rows, cached=state.name == "Cached")
