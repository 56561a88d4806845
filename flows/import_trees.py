"""Import josh-train's shipped Llama-3 JOSH trees into the datasets a simulate run saves (ToolWOZ only: the trees
are ToolWOZ dialogues, so this flow names its domain).

shipped trees (each replayed here for its reward) -> dialogues, trees, SFT set, DPO pairs, KTO rows
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task
from pydantic import BaseModel

from roleplay.config import SimulateConfig
from core.fingerprint import code_fingerprint, stable_hash
from core.paths import new_run_dir
from core.types import JoshTree
from envs.toolwoz.data import data_version, load_toolwoz
from roleplay.shipped_trees import import_shipped_trees
from tasks.simulation import harvest_datasets


class ImportReport(BaseModel):
    run_dir: str
    counts: dict[str, int]  # rows per saved dataset
    full_reward: int  # trees whose golden path replays to full reward here
    cached: bool  # the replayed trees were read from storage


@task(cache_key_fn=lambda *_: stable_hash("shipped-trees", data_version(), code_fingerprint("roleplay.shipped_trees")))
def shipped_trees() -> list[JoshTree]:
    """Every shipped tree, replayed here for its reward; cached on the data package and the replay code."""
    return import_shipped_trees(load_toolwoz())


@flow(name="import-josh-trees")
def import_josh_trees(cfg: SimulateConfig = SimulateConfig()) -> ImportReport:
    """`cfg` gives the agent prompt the rows are rendered with, the SFT reward bar and the runs folder."""
    state = shipped_trees(return_state=True)
    trees = state.result()
    run_dir = new_run_dir(cfg.runs_dir, cfg.run_name or f"josh-trees-{datetime.now():%Y%m%d-%H%M%S}")
    counts = harvest_datasets(trees, cfg, run_dir)
    return ImportReport(run_dir=str(run_dir), counts=counts, full_reward=sum(t.dialogue.outcome.success for t in trees),
                        cached=state.name == "Cached")
