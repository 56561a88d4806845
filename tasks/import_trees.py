"""Prefect tasks of the import-josh-trees flow: josh-train's shipped trees replayed here for their reward (cached on
the data package and the replay code), and the datasets a simulate run saves, harvested from them."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from pydantic import BaseModel

from roleplay.config import SimulateConfig
from core.cache import stored_result
from core.fingerprint import code_fingerprint, stable_hash
from core.paths import write_atomically
from core.types import JoshTree
from envs.toolwoz.data import data_version, load_toolwoz
from roleplay.shipped_trees import import_shipped_trees
from tasks.simulation import harvest_datasets


DONE = "import.json"


class ImportReport(BaseModel):
    run_dir: str
    counts: dict[str, int]  # rows per saved dataset
    full_reward: int  # trees whose golden path replays to full reward here
    fingerprint: str  # what the datasets depend on: data, code, and the settings rows are rendered with
    cached: bool = False  # the datasets were read from an earlier import with the same fingerprint


@task(cache_key_fn=lambda *_: stored_result(stable_hash("shipped-trees", data_version(),
                                                     code_fingerprint("roleplay.shipped_trees"))))
def shipped_trees() -> list[JoshTree]:
    """Every shipped tree, replayed here for its reward; cached on the data package and the replay code."""
    return import_shipped_trees(load_toolwoz())


def import_fingerprint(cfg: SimulateConfig) -> str:
    settings = cfg.model_dump(include={"benchmark", "agent_format", "agent_prompt", "sft_min_reward"})
    return stable_hash("josh-trees", data_version(), settings, code_fingerprint("flows.import_trees"))


def harvested(cfg: SimulateConfig, fingerprint: str, run_dir: Path) -> ImportReport:
    trees = shipped_trees()
    counts = harvest_datasets(trees, cfg, run_dir)
    report = ImportReport(run_dir=str(run_dir), counts=counts, fingerprint=fingerprint,
                          full_reward=sum(t.dialogue.outcome.success for t in trees))
    write_atomically(run_dir / DONE, report.model_dump_json(indent=2))
    return report
