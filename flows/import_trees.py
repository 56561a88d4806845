"""Import josh-train's shipped Llama-3 JOSH trees into the datasets a simulate run saves (ToolWOZ only: the trees
are ToolWOZ dialogues, so this flow names its domain).

shipped trees (each replayed here for its reward) -> dialogues, trees, SFT set, DPO pairs, KTO rows

Unless a run name is given, the datasets land in a folder named for everything they depend on (built once, with its
report `import.json`); an import with the same settings finds it and reads its report instead of saving 926 trees
again.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from pydantic import BaseModel

from roleplay.config import SimulateConfig
from core.cache import build_once, stored_result
from core.fingerprint import code_fingerprint, stable_hash
from core.paths import new_run_dir, write_atomically
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


@flow(name="import-josh-trees")
def import_josh_trees(cfg: SimulateConfig = SimulateConfig()) -> ImportReport:
    """`cfg` gives the agent prompt the rows are rendered with, the SFT reward bar and the runs folder."""
    fingerprint = import_fingerprint(cfg)
    if cfg.run_name:
        return harvested(cfg, fingerprint, new_run_dir(cfg.runs_dir, cfg.run_name))
    run_dir = Path(cfg.runs_dir) / f"josh-trees-{fingerprint[:12]}"
    found = run_dir.is_dir()
    build_once(run_dir, lambda folder: harvested(cfg, fingerprint, folder))
    report = ImportReport.model_validate_json((run_dir / DONE).read_text())
    return report.model_copy(update={"run_dir": str(run_dir), "cached": found})  # however the runs folder is spelled


def harvested(cfg: SimulateConfig, fingerprint: str, run_dir: Path) -> ImportReport:
    trees = shipped_trees()
    counts = harvest_datasets(trees, cfg, run_dir)
    report = ImportReport(run_dir=str(run_dir), counts=counts, fingerprint=fingerprint,
                          full_reward=sum(t.dialogue.outcome.success for t in trees))
    write_atomically(run_dir / DONE, report.model_dump_json(indent=2))
    return report
