"""The imagination engine: SFT and preference data from a task description alone (no database, no workflow).

task description -> personas (shared draws, made task-specific) -> imagined successes and failures
                 -> critique + revise (cached) -> datasets (dialogues, imagined drafts and critiques, SFT, DPO, KTO)
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow
from pydantic import BaseModel

from core.config import ImagineConfig
from core.paths import new_run_dir
from flows.bootstrap import build_models
from flows.personas import personas
from tasks.imagine import imagine_dialogues, imagine_fingerprint, publish_report, save_imagined


class ImagineReport(BaseModel):
    run_dir: str
    counts: dict[str, int]
    cached: bool


@flow(name="imagine")
def imagine_flow(cfg: ImagineConfig = ImagineConfig()) -> ImagineReport:
    build_models(cfg.model.spec)
    drawn = personas(cfg.personas, cfg.runs_dir)
    state = imagine_dialogues(cfg, drawn, imagine_fingerprint(cfg, drawn), return_state=True)
    run_dir = new_run_dir(cfg.runs_dir, cfg.run_name or f"imagine-{datetime.now():%Y%m%d-%H%M%S}")
    counts = save_imagined(state.result(), cfg, run_dir)
    publish_report(counts, cfg, run_dir)
    return ImagineReport(run_dir=str(run_dir), counts=counts, cached=state.name == "Cached")
