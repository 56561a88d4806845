"""Self-training end to end: the product's main job.

[bootstrap] -> simulate (personas, JOSH), import josh-train's trees, or Self-talk on a workflow
            -> curate -> SFT -> DPO -> evaluate base, SFT and DPO on the same held-out tasks and seeds
            (a workflow: unguided self-talk with other persona pairings) -> comparison report

Every stage is a subflow with its own cache, so a rerun with the same settings only reads
stored results, and a changed setting reruns the stages that depend on it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow, get_run_logger
from pydantic import BaseModel

from core.config import CurateConfig, ModelConfig, PipelineConfig
from core.paths import new_run_dir
from flows.bootstrap import bootstrap
from flows.curate import curate
from flows.evaluate import evaluate
from flows.imagine import imagine_flow
from flows.import_trees import import_josh_trees
from flows.selftalk import selftalk_flow
from flows.simulate import simulate
from flows.train import Adapter, preference, sft
from tasks.benchmarks import benchmark
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


def evaluate_stage(cfg: PipelineConfig, agent: ModelConfig, name: str) -> tuple[str, bool]:
    """One stage's evaluation run folder, and whether its dialogues came from the cache. A workflow is
    evaluated by self-talk without the manager's instructions, on other pairings of intentions and personas."""
    if cfg.source == "selftalk":
        held_out = cfg.stage("selftalk", agent=agent, guided=False, seed=cfg.selftalk.seed + 1, run_name=None)
        report = selftalk_flow.with_options(flow_run_name=f"evaluate-{name}")(held_out)
        return report.run_dir, report.cached
    report = evaluate.with_options(flow_run_name=f"evaluate-{name}")(cfg.stage("evaluation", agent=agent))
    return report.run_dir, "simulate_dialogues" in report.cached


def held_out(cfg: PipelineConfig) -> str:
    """What the stages are compared on, for the report and the plot."""
    if cfg.source == "selftalk":
        return f"workflow {cfg.selftalk.workflow}, unguided self-talk, {cfg.selftalk.n_dialogues} held-out dialogues"
    if cfg.source == "imagine":
        return "nothing: imagined tasks have no environment to evaluate in"
    trials = f" x {cfg.evaluation.trials} trials" if cfg.evaluation.trials > 1 else ""
    return f"{benchmark(cfg.evaluation.benchmark).title} {cfg.evaluation.split}, {cfg.evaluation.n_tasks} held-out tasks{trials}"


def source_stage(cfg: PipelineConfig) -> tuple[str, str, bool]:
    """The stage that makes the dialogues: its name, its run folder, and whether it came from the cache."""
    if cfg.source == "simulate":
        report = simulate.with_options(flow_run_name="simulate")(cfg.stage("simulate"))
        return "simulate", report.run_dir, report.cached_shards == report.shards
    if cfg.source == "josh-trees":
        report = import_josh_trees.with_options(flow_run_name="import-trees")(cfg.stage("simulate"))
        return "import-trees", report.run_dir, report.cached
    if cfg.source == "selftalk":
        report = selftalk_flow.with_options(flow_run_name="selftalk")(cfg.stage("selftalk"))
        return "selftalk", report.run_dir, report.cached
    report = imagine_flow.with_options(flow_run_name="imagine")(cfg.imagine.model_copy(update={"runs_dir": cfg.runs_dir}))
    return "imagine", report.run_dir, report.cached


@flow(name="pipeline")
def pipeline(cfg: PipelineConfig = PipelineConfig()) -> PipelineReport:
    logger = get_run_logger()
    if "embedded" in (cfg.agent.spec, cfg.user.spec):
        bootstrap.with_options(flow_run_name="bootstrap")()
    name, source_dir, cached = source_stage(cfg)
    stages = {name: "cached" if cached else "ran"}
    curated = curate.with_options(flow_run_name="curate")(CurateConfig(source=source_dir, suites=cfg.suites, runs_dir=cfg.runs_dir))
    stages["curate"] = "cached" if curated.cached else "ran"
    kept = Path(curated.run_dir)

    adapters: dict[str, Adapter] = {}
    if _rows(kept / "sft"):
        adapters["sft"] = sft.with_options(flow_run_name="sft")(cfg.sft, cfg.agent, str(kept / "sft"))
    else:
        logger.warning("no SFT rows survived curation: SFT skipped")
    pairs = kept / ("dpo" if cfg.preference.method == "dpo" else "kto")
    if _rows(pairs):
        adapters[cfg.preference.method] = preference.with_options(flow_run_name=cfg.preference.method)(
            cfg.preference, cfg.agent, str(pairs), adapters.get("sft"))
    else:
        logger.warning("no preference rows survived curation: %s skipped", cfg.preference.method.upper())
    stages.update({name: "cached" if a.cached else "ran" for name, a in adapters.items()})

    runs = {}
    evaluated = {} if cfg.source == "imagine" else {"base": None, **adapters}
    if not evaluated:
        logger.warning("imagined tasks have no environment to evaluate in: evaluate the adapters on your own benchmark")
    for name, adapter in evaluated.items():
        agent = cfg.agent.model_copy(update={"adapter": adapter.path if adapter else None})
        runs[name], cached = evaluate_stage(cfg, agent, name)
        stages[f"evaluate {name}"] = "cached" if cached else "ran"

    run_dir = new_run_dir(cfg.runs_dir, f"pipeline-{datetime.now():%Y%m%d-%H%M%S}")
    links = {f"dialogues ({cfg.source})": source_dir, "curated datasets": str(kept), "Data Docs": curated.data_docs,
             **{f"{name} adapter": a.path for name, a in adapters.items()},
             **{f"evaluation {name}": run for name, run in runs.items()}}
    table = publish_comparison(runs, links, run_dir, held_out(cfg))
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=1))
    return PipelineReport(run_dir=str(run_dir), table=table, stages=stages,
                          adapters={name: a.path for name, a in adapters.items()}, evaluations=runs, curated=str(kept))
