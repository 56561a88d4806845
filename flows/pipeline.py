"""Self-training end to end: the product's main job.

[bootstrap] -> simulate (personas, JOSH) or import josh-train's trees -> curate -> SFT -> DPO
            -> evaluate base, SFT and DPO on the same held-out tasks and seeds -> comparison report

Every stage is a subflow with its own cache, so a rerun with the same settings only reads
stored results, and a changed setting reruns the stages that depend on it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow, get_run_logger
from pydantic import BaseModel

from core.config import CurateConfig, PipelineConfig
from core.paths import new_run_dir
from flows.bootstrap import bootstrap
from flows.curate import curate
from flows.evaluate import evaluate
from flows.import_trees import import_josh_trees
from flows.simulate import simulate
from flows.train import Adapter, preference, sft
from tasks.comparison import publish_comparison


class PipelineReport(BaseModel):
    run_dir: str
    table: list[dict[str, str]]
    stages: dict[str, str]  # stage -> "ran" or "cached"
    adapters: dict[str, str]  # stage -> adapter folder
    evaluations: dict[str, str]  # stage -> evaluation run folder
    curated: str  # the curate run folder (kept / dropped datasets, report, Data Docs)


def _rows(path: Path) -> int:
    import datasets

    return len(datasets.load_from_disk(str(path))) if path.is_dir() else 0


@flow(name="pipeline")
def pipeline(cfg: PipelineConfig = PipelineConfig()) -> PipelineReport:
    logger = get_run_logger()
    if "embedded" in (cfg.agent.spec, cfg.user.spec):
        bootstrap()
    stages: dict[str, str] = {}
    if cfg.source == "simulate":
        data = simulate(cfg.stage("simulate"))
        stages["simulate"] = "cached" if data.cached_shards == data.shards else "ran"
    else:
        data = import_josh_trees(cfg.stage("simulate"))
        stages["import-trees"] = "cached" if data.cached else "ran"
    curated = curate(CurateConfig(source=data.run_dir, suites=cfg.suites, runs_dir=cfg.runs_dir))
    stages["curate"] = "cached" if curated.cached else "ran"
    kept = Path(curated.run_dir)

    adapters: dict[str, Adapter] = {}
    if _rows(kept / "sft"):
        adapters["sft"] = sft(cfg.sft, cfg.agent, str(kept / "sft"))
    else:
        logger.warning("no SFT rows survived curation: SFT skipped")
    pairs = kept / ("dpo" if cfg.preference.method == "dpo" else "kto")
    if _rows(pairs):
        adapters[cfg.preference.method] = preference(cfg.preference, cfg.agent, str(pairs), adapters.get("sft"))
    else:
        logger.warning("no preference rows survived curation: %s skipped", cfg.preference.method.upper())
    stages.update({name: "cached" if a.cached else "ran" for name, a in adapters.items()})

    runs = {}
    for name, adapter in {"base": None, **adapters}.items():
        agent = cfg.agent.model_copy(update={"adapter": adapter.path if adapter else None})
        report = evaluate.with_options(flow_run_name=f"evaluate-{name}")(cfg.stage("evaluation", agent=agent))
        runs[name] = report.run_dir
        stages[f"evaluate {name}"] = "cached" if "simulate_dialogues" in report.cached else "ran"

    run_dir = new_run_dir(cfg.runs_dir, f"pipeline-{datetime.now():%Y%m%d-%H%M%S}")
    links = {"dialogues (simulated)": data.run_dir, "curated datasets": str(kept), "Data Docs": curated.data_docs,
             **{f"{name} adapter": a.path for name, a in adapters.items()},
             **{f"evaluation {name}": run for name, run in runs.items()}}
    table = publish_comparison(runs, links, run_dir)
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=1))
    return PipelineReport(run_dir=str(run_dir), table=table, stages=stages,
                          adapters={name: a.path for name, a in adapters.items()}, evaluations=runs, curated=str(kept))
