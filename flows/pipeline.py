"""Self-training end to end: the product's main job.

[bootstrap or warm start] -> simulate (personas, JOSH), import josh-train's trees, or Self-talk on a workflow
            -> curate -> SFT -> DPO -> evaluate base, SFT and DPO on the same held-out tasks and seeds
            (a workflow: unguided self-talk with other persona pairings) -> comparison report
With `rounds=N` (JOSH only), round k simulates new training tasks with round k-1's model, curates, trains
SFT then DPO from the base on everything kept so far, and base and every round's model are compared.

Every stage is a subflow with its own cache, so a rerun with the same settings only reads
stored results, and a changed setting reruns the stages that depend on it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow, get_run_logger
from pydantic import BaseModel

from core.config import CurateConfig, ModelConfig
from flows.pipeline_config import PipelineConfig
from core.paths import new_run_dir, write_atomically
from flows.bootstrap import build_models
from flows.curate import curate
from flows.evaluate import evaluate
from flows.imagine import imagine_flow
from flows.import_trees import import_josh_trees
from flows.selftalk import selftalk_flow
from flows.simulate import simulate
from flows.rl import rl
from flows.train import Adapter, preference, sft
from envs.registry import domain
from tasks.comparison import publish_comparison
from tasks.training import kept_so_far


REPORT = "pipeline.json"  # the PipelineReport, in the run folder


class PipelineReport(BaseModel):
    run_dir: str
    table: list[dict[str, str]]
    stages: dict[str, str]  # stage -> "ran" or "cached"
    adapters: dict[str, str]  # stage -> adapter folder
    evaluations: dict[str, str]  # stage -> evaluation run folder
    curated: str  # the (last round's) curate run folder (kept / dropped datasets, report, Data Docs)
    sources: list[str] = []  # each round's dialogues (the source stage's run folder)
    harvest: dict[str, dict[str, int]] = {}  # round -> dialogues kept, SFT rows and preference rows kept


def _rows(path: Path) -> int:
    from core.records import load_dataset

    return len(load_dataset(path)) if path.is_dir() else 0


def evaluate_stage(cfg: PipelineConfig, agent: ModelConfig, name: str) -> tuple[str, bool]:
    """One stage's evaluation run folder, and whether its dialogues came from the cache. A workflow is
    evaluated by self-talk without the manager's instructions, on other pairings of intentions and personas."""
    if cfg.source == "selftalk":
        held_out = cfg.stage("selftalk", agent=agent, guided=False, seed=cfg.selftalk.seed + 1, run_name=None)
        report = selftalk_flow.with_options(flow_run_name=f"evaluate-{name}")(held_out)
        return report.run_dir, report.cached
    report = evaluate.with_options(flow_run_name=f"evaluate-{name}")(cfg.stage("evaluation", agent=agent))
    return report.run_dir, report.cached


def held_out(cfg: PipelineConfig) -> str:
    """What the stages are compared on, for the report and the plot."""
    if cfg.source == "selftalk":
        return f"workflow {cfg.selftalk.workflow}, unguided self-talk, {cfg.selftalk.n_dialogues} held-out dialogues"
    if cfg.source == "imagine":
        return "nothing: imagined tasks have no environment to evaluate in"
    trials = f" x {cfg.evaluation.trials} trials" if cfg.evaluation.trials > 1 else ""
    return f"{domain(cfg.benchmark).title} {cfg.evaluation.split}, {cfg.evaluation.n_tasks} held-out tasks{trials}"


def source_stage(cfg: PipelineConfig, agent: ModelConfig, draw: int, tag: str = "") -> tuple[str, str, bool]:
    """The stage that makes the dialogues: its name, its run folder, and whether it came from the cache.
    `agent` simulates (a round's policy); `draw` picks training tasks no earlier round used."""
    if cfg.source == "simulate":
        stage_cfg = cfg.stage("simulate", agent=agent, task_draw=cfg.simulate.task_draw + draw)
        report = simulate.with_options(flow_run_name=f"{tag}simulate")(stage_cfg)
        return "simulate", report.run_dir, report.cached
    if cfg.source == "josh-trees":
        report = import_josh_trees.with_options(flow_run_name="import-trees")(cfg.stage("simulate"))
        return "import-trees", report.run_dir, report.cached
    if cfg.source == "selftalk":
        report = selftalk_flow.with_options(flow_run_name="selftalk")(cfg.stage("selftalk"))
        return "selftalk", report.run_dir, report.cached
    report = imagine_flow.with_options(flow_run_name="imagine")(cfg.imagine.model_copy(update={"runs_dir": cfg.runs_dir}))
    return "imagine", report.run_dir, report.cached


def train_round(cfg: PipelineConfig, kept: list[Path], tag: str = "") -> dict[str, Adapter]:
    """SFT from the base on every SFT row kept so far, then the preference step on every pair kept so far (or online
    RL from the SFT model)."""
    logger = get_run_logger()
    adapters: dict[str, Adapter] = {}
    sft_rows = kept_so_far(kept, "sft")
    if _rows(sft_rows):
        adapters["sft"] = sft.with_options(flow_run_name=f"{tag}sft")(cfg.sft, cfg.agent, str(sft_rows))
    else:
        logger.warning("no SFT rows survived curation: %sSFT skipped", tag)
    if cfg.online_rl:
        start = adapters.get("sft")
        rl_cfg = cfg.stage("rl", agent=cfg.agent.model_copy(update={"adapter": start.path if start else None}))
        adapters["grpo"] = rl.with_options(flow_run_name=f"{tag}grpo")(rl_cfg)
        return adapters
    pairs = kept_so_far(kept, cfg.preference.method)  # the curated set is named for its method
    if _rows(pairs):
        adapters[cfg.preference.method] = preference.with_options(flow_run_name=f"{tag}{cfg.preference.method}")(
            cfg.preference, cfg.agent, str(pairs), adapters.get("sft"))
    else:
        logger.warning("no preference rows survived curation: %s%s skipped", tag, cfg.preference.method.upper())
    return adapters


class Round(BaseModel):
    """One round of self-training: its dialogues, what curation kept, the adapters trained after it."""

    tag: str  # "" when there is one round, else "round k "
    source: str  # the source stage's run folder
    curated: str
    data_docs: str
    adapters: dict[str, Adapter]
    harvest: dict[str, int]  # dialogues, kept, SFT rows and preference rows kept
    stages: dict[str, str]  # stage -> "ran" or "cached"

    def final(self) -> Adapter | None:
        """The round's model: the step after SFT's (preference or online RL), else SFT's, else none (the policy stays
        as it was)."""
        return next((a for kind, a in self.adapters.items() if kind != "sft"), None) or self.adapters.get("sft")


def self_training_round(cfg: PipelineConfig, policy: ModelConfig, k: int, earlier: list["Round"]) -> Round:
    """Round k: dialogues with `policy` (the previous round's model), curated, then training on all kept so far."""
    tag = f"round {k + 1} " if cfg.rounds > 1 else ""
    name, source_dir, cached = source_stage(cfg, policy, k, tag)
    curated = curate.with_options(flow_run_name=f"{tag}curate")(
        CurateConfig(source=source_dir, suites=cfg.suites, runs_dir=cfg.runs_dir))
    kept = Path(curated.run_dir)
    adapters = train_round(cfg, [*(Path(r.curated) for r in earlier), kept], tag)
    stages = {tag + name: "cached" if cached else "ran", f"{tag}curate": "cached" if curated.cached else "ran",
              **{tag + kind: "cached" if a.cached else "ran" for kind, a in adapters.items()}}
    harvest = {"dialogues": curated.counts["dialogues"], "kept": curated.counts["kept"], "sft": _rows(kept / "sft"),
               cfg.preference.method: _rows(kept / cfg.preference.method)}
    return Round(tag=tag, source=source_dir, curated=str(kept), data_docs=curated.data_docs, adapters=adapters,
                 harvest=harvest, stages=stages)


@flow(name="pipeline")
def pipeline(cfg: PipelineConfig = PipelineConfig()) -> PipelineReport:
    logger = get_run_logger()
    build_models(cfg.agent.spec, cfg.user.spec)
    rounds: list[Round] = []
    policy = cfg.agent
    for k in range(cfg.rounds):
        rounds.append(self_training_round(cfg, policy, k, rounds))
        if final := rounds[-1].final():
            policy = cfg.agent.model_copy(update={"adapter": final.path})

    # one round: base, SFT and the preference step; several: base and each round's model
    evaluated: dict[str, Adapter | None] = {"base": None}
    for r in rounds:
        final = r.final()
        evaluated.update(r.adapters if cfg.rounds == 1 else {r.tag.strip(): final} if final else {})
    if cfg.source == "imagine":
        evaluated = {}
        logger.warning("imagined tasks have no environment to evaluate in: evaluate the adapters on your own benchmark")
    stages = {name: state for r in rounds for name, state in r.stages.items()}
    runs = {}
    for name, adapter in evaluated.items():
        agent = cfg.agent.model_copy(update={"adapter": adapter.path if adapter else None})
        runs[name], cached = evaluate_stage(cfg, agent, name.replace(" ", "-"))
        stages[f"evaluate {name}"] = "cached" if cached else "ran"

    run_dir = new_run_dir(cfg.runs_dir, f"pipeline-{datetime.now():%Y%m%d-%H%M%S}")
    adapters = {r.tag + kind: a for r in rounds for kind, a in r.adapters.items()}
    links = {}
    for r in rounds:
        links.update({f"{r.tag}dialogues ({cfg.source})": r.source, f"{r.tag}curated datasets": r.curated,
                      f"{r.tag}Data Docs": r.data_docs})
    links.update({f"{name} adapter": a.path for name, a in adapters.items()})
    links.update({f"evaluation {name}": run for name, run in runs.items()})
    harvest = {r.tag.strip() or "harvest": r.harvest for r in rounds}
    table = publish_comparison(runs, links, run_dir, held_out(cfg), harvest if cfg.rounds > 1 else None)
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=1))
    report = PipelineReport(run_dir=str(run_dir), table=table, stages=stages,
                            adapters={name: a.path for name, a in adapters.items()}, evaluations=runs,
                            curated=rounds[-1].curated, sources=[r.source for r in rounds], harvest=harvest)
    write_atomically(run_dir / REPORT, report.model_dump_json(indent=1))  # where everything is, for scripts
    return report
