"""Import josh-train's shipped Llama-3 JOSH trees into the datasets a simulate run saves (ToolWOZ only: the trees
are ToolWOZ dialogues, so this flow names its domain).

shipped trees (each replayed here for its reward) -> dialogues, trees, SFT set, DPO pairs, KTO rows

Unless a run name is given, the datasets land in a folder named for everything they depend on (built once, with its
report `import.json`); an import with the same settings finds it and reads its report instead of saving 926 trees
again.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from roleplay.config import SimulateConfig
from core.cache import build_once
from core.paths import new_run_dir
from tasks.import_trees import DONE, ImportReport, harvested, import_fingerprint


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
