"""Curate a run's dialogues with expectation suites: what to train on, and why the rest is not.

run dialogues -> metric table + suite verdicts (cached) -> kept / dropped / training sets
              -> batch checks -> Data Docs -> funnel; a failed critical batch check fails the run
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow
from pydantic import BaseModel

from core.config import CurateConfig
from core.errors import QualityGateError
from core.paths import new_run_dir
from quality.suites import load_suite
from tasks.curation import (
    batch_rows,
    check_kept_batch,
    curate_fingerprint,
    measure_and_filter,
    publish_data_docs,
    publish_funnel,
    save_curated_datasets,
    source_dialogues,
)


class CurateReport(BaseModel):
    run_dir: str
    counts: dict[str, int]
    funnel: list[dict[str, str]]
    batch_checks: list[dict[str, str]]
    data_docs: str
    cached: bool  # the metric table and verdicts were read from storage


@flow(name="curate")
def curate(cfg: CurateConfig) -> CurateReport:
    suites = [load_suite(s) for s in cfg.suites]
    dialogues = source_dialogues(cfg.source)
    state = measure_and_filter(cfg, dialogues, suites, curate_fingerprint(cfg, suites), return_state=True)
    curated = state.result()
    run_dir = new_run_dir(cfg.runs_dir, cfg.run_name or f"curate-{datetime.now():%Y%m%d-%H%M%S}")
    counts = save_curated_datasets(dialogues, curated, cfg.source, run_dir)
    summary, checks = check_kept_batch(dialogues, curated, suites)
    docs = publish_data_docs(curated, summary, suites, run_dir)
    funnel = publish_funnel(curated, checks, counts, run_dir)
    failed = [c for c in checks if not c.success and c.entry.severity == "critical"]
    if failed:
        raise QualityGateError("batch check failed: " + "; ".join(
            f"{c.suite}.{c.entry.reason} ({c.entry.kwargs.get('column')} = {c.observed}: {c.entry.why})" for c in failed)
            + f". Datasets and report are in {run_dir}")
    return CurateReport(run_dir=str(run_dir), counts=counts, funnel=funnel, batch_checks=batch_rows(checks),
                        data_docs=str(docs), cached=state.name == "Cached")
