"""Prefect tasks of the imagine flow: imagined dialogues (critiqued and revised; cached on a fingerprint, since API
calls cost), their datasets and the report."""

from __future__ import annotations

from pathlib import Path

import datasets
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from core.cache import by_fingerprint
from core.config import ImagineConfig
from core.fingerprint import code_fingerprint, stable_hash
from core.types import Message, Persona
from models.loading import load_model
from models.specs import model_fingerprint
from roleplay import harvest, imagine
from roleplay.imagine import Imagined
from tasks import run_report
from tasks.retries import ENDPOINT_RETRIES


def imagine_fingerprint(cfg: ImagineConfig, drawn: list[Persona]) -> str:
    return stable_hash("imagine", model_fingerprint(cfg.model), cfg.model_dump(include={"task", "criteria", "sampling",
                       "critique"}), [p.id for p in drawn], code_fingerprint("roleplay.imagine"))


@task(cache_key_fn=by_fingerprint, **ENDPOINT_RETRIES)
def imagine_dialogues(cfg: ImagineConfig, drawn: list[Persona], fingerprint: str) -> list[Imagined]:
    """Task-specific personas, then a critiqued and revised success and failure for each (API calls cost: cached)."""
    model = load_model(cfg.model)
    try:
        reply = model.generate([imagine.persona_prompt(cfg.task, drawn)], cfg.sampling)[0][0].text
        people = imagine.task_personas(drawn, reply)
        return imagine.imagine(model, cfg.task, cfg.criteria, people, cfg.sampling, cfg.critique)
    finally:
        model.close()


@task
def save_imagined(items: list[Imagined], cfg: ImagineConfig, run_dir: Path) -> dict[str, int]:
    """Dialogues (the revisions), the imagined steps with their critiques, SFT from successes, pairs of both."""
    task_id = stable_hash(cfg.task)[:8]
    spec = cfg.model.spec
    dialogues = [imagine.as_dialogue(i, task_id, spec) for i in items]
    by_persona = {(d.scenario.persona.id, d.outcome.success): d for d in dialogues}
    pairs = [p for d in dialogues if d.outcome.success and d.messages
             if (failure := by_persona.get((d.scenario.persona.id, False))) and (p := harvest.diverging_pair(d, [], d.messages, failure.messages))]
    system = imagine.agent_system(cfg.task)
    tables = {
        "sft": [{"scenario_id": d.id, "task_id": d.scenario.task_id, "reward": d.outcome.reward,
                 "messages": harvest.chat([Message(role="system", content=system), *d.messages])}
                for d in dialogues if d.outcome.success and d.messages],
        "dpo": harvest.dpo_rows(pairs, system),
        "kto": harvest.kto_rows(pairs, system),
    }
    counts = {**run_report.save_datasets(run_dir, dialogues, tables), "empty": sum(not d.messages for d in dialogues)}
    datasets.Dataset.from_list([{"persona": i.persona.text, "target": i.target, "draft": imagine.render(i.draft),
                                 "critique": i.critique, "revised": imagine.render(i.messages)} for i in items]
                               ).save_to_disk(str(run_dir / "imagined"))
    get_run_logger().info("saved %s to %s", counts, run_dir)
    return counts


@task
def publish_report(counts: dict[str, int], cfg: ImagineConfig, run_dir: Path) -> None:
    markdown = "\n".join([f"# Imagination engine: `{cfg.model.spec}`", f"Task: {cfg.task}", f"Run folder `{run_dir}`.", "",
                          *run_report.markdown_table(["dataset", "rows"], counts.items())]) + "\n"
    create_markdown_artifact(markdown, key="imagine-report", description="Imagined dialogues")
    (run_dir / "report.md").write_text(markdown)
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=1))
