"""Prefect tasks of the curate flow: a run's dialogues -> metric table + verdicts -> kept / dropped datasets.

The measuring and filtering task is cached on the content of the source dialogues, the suite
files, the judge and the quality code, so curating the same run again with the same suites
costs nothing. Every output lands in a new run folder: kept and dropped dialogues (dropped rows
keep their reasons), the metric table, the SFT / DPO / KTO sets filtered to the kept
dialogues, a funnel and a Great Expectations Data Docs site.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from core.cache import by_fingerprint
from core import records
from core.config import CurateConfig
from core.errors import DataMissingError
from core.fingerprint import code_fingerprint, stable_hash
from core.types import Dialogue
from envs.registry import benchmark_domain
from quality.dialogue_table import batch_summary, dialogue_table
from quality.judge import persona_scores
from quality.suites import Suite
from quality.validation import Check, RowVerdicts, build_data_docs, check_batch, filter_rows, funnel
from tasks.retries import ENDPOINT_RETRIES
from tasks.run_report import markdown_table

TRAINING_SETS = ("sft", "dpo", "kto")


@dataclass
class Curated:
    table: pd.DataFrame  # one row per dialogue, same order as the source
    verdicts: RowVerdicts


def source_file(source: str) -> Path:
    path = Path(source) / "dialogues.jsonl"
    if not path.is_file():
        raise DataMissingError(f"{source} holds no dialogues.jsonl: give source= the folder of a simulate or import-trees run")
    return path


@task
def source_dialogues(source: str) -> list[Dialogue]:
    return records.read_jsonl(source_file(source))


def curate_fingerprint(cfg: CurateConfig, suites: list[Suite]) -> str:
    from models.specs import model_fingerprint

    content = hashlib.sha256(source_file(cfg.source).read_bytes()).hexdigest()
    judge = model_fingerprint(cfg.judge) if cfg.judge else None
    return stable_hash("curate", content, [s.model_dump(exclude={"path"}) for s in suites], cfg.near_duplicate_threshold,
                       judge, cfg.judge_sampling, code_fingerprint(__name__))


def goal_conveyed(d: Dialogue) -> tuple[int, int] | None:
    """How much of its goal a dialogue's customer said, where its domain can tell (workflows cannot)."""
    found = benchmark_domain(d.scenario.domain)
    return found.goal_conveyed(d) if found else None


@task(cache_key_fn=by_fingerprint, **ENDPOINT_RETRIES)
def measure_and_filter(cfg: CurateConfig, dialogues: list[Dialogue], suites: list[Suite], fingerprint: str) -> Curated:
    """The metric table and what every suite entry found in it."""
    judged = None
    if cfg.judge:
        from models.loading import load_model

        judge = load_model(cfg.judge)
        try:
            judged = persona_scores(dialogues, judge, cfg.judge_sampling)
        finally:
            judge.close()
    table = dialogue_table(dialogues, goal_conveyed, judged, cfg.near_duplicate_threshold)
    return Curated(table, filter_rows(table, suites))


@task
def save_curated_datasets(dialogues: list[Dialogue], curated: Curated, source: str, run_dir: Path) -> dict[str, int]:
    """Kept and dropped dialogues (with reasons and warnings), the metric table, and each training set
    of the source run restricted to the dialogues no critical entry gating it failed."""
    verdicts, n = curated.verdicts, len(dialogues)
    reasons = [verdicts.dropped.get(i, []) for i in range(n)]
    warnings = [verdicts.warned.get(i, []) for i in range(n)]
    kept = verdicts.kept(n)
    dropped = sorted(verdicts.dropped)
    table = curated.table.assign(kept=[not r for r in reasons], reasons=reasons, warnings=warnings)
    table.to_parquet(run_dir / "metrics.parquet")
    for name, rows in (("kept", kept), ("dropped", dropped)):
        ds = records.dialogues_to_dataset([dialogues[i] for i in rows])
        ds = ds.add_column("warnings", [warnings[i] for i in rows])
        if name == "dropped":
            ds = ds.add_column("reasons", [reasons[i] for i in rows])
        ds.save_to_disk(str(run_dir / name), num_shards=1)
    records.write_jsonl([dialogues[i] for i in kept], run_dir / "dialogues.jsonl")
    counts = {"dialogues": n, "kept": len(kept), "dropped": len(dropped)}
    for name in TRAINING_SETS:
        kept_ids = {dialogues[i].id for i in verdicts.kept_for(n, name)}
        path = Path(source) / name
        if not path.is_dir():
            continue
        rows = records.load_dataset(path)
        if "scenario_id" not in rows.column_names:
            raise DataMissingError(f"{path} has no scenario_id column (made by an older version): simulate the run again")
        filtered = rows.filter(lambda r: r["scenario_id"] in kept_ids)
        filtered.save_to_disk(str(run_dir / name), num_shards=1)
        counts[f"{name} (of {len(rows)})"] = len(filtered)
    get_run_logger().info("curated %s into %s", counts, run_dir)
    return counts


@task
def check_kept_batch(dialogues: list[Dialogue], curated: Curated, suites: list[Suite]) -> tuple[dict, list[Check]]:
    summary = batch_summary(curated.table, curated.verdicts.kept(len(dialogues)), dialogues)
    return summary, check_batch(summary, suites)


@task
def publish_data_docs(curated: Curated, summary: dict, suites: list[Suite], run_dir: Path) -> Path:
    index = build_data_docs(curated.table, summary, suites, run_dir / "data_docs", run_dir.name)
    create_link_artifact(index.resolve().as_uri(), link_text="Data Docs", key="curate-data-docs",
                         description="Great Expectations Data Docs of this curate run")
    return index


def batch_rows(checks: list[Check]) -> list[dict[str, str]]:
    return [{"suite": c.suite, "reason": c.entry.reason, "severity": c.entry.severity,
             "observed": f"{c.observed:.3g}" if isinstance(c.observed, float) else str(c.observed),
             "expected": ", ".join(f"{k} {v}" for k, v in c.entry.kwargs.items() if k != "column"),
             "result": "passed" if c.success else "FAILED"} for c in checks]


@task
def publish_funnel(curated: Curated, checks: list[Check], counts: dict[str, int], run_dir: Path) -> list[dict[str, str]]:
    """The funnel (rows left after each suite entry) and the batch checks, as artifacts and report.md."""
    rows = funnel(len(curated.table), curated.verdicts)
    create_table_artifact(rows, key="curate-funnel", description="Rows left after each expectation")
    batch = batch_rows(checks)
    create_table_artifact(batch, key="curate-batch-checks", description="Dataset-level expectations")
    markdown = "\n".join([
        f"# Curation: {counts['kept']} of {counts['dialogues']} dialogues kept", f"Run folder `{run_dir}`.", "",
        *markdown_table(["suite", "reason", "severity", "gates", "failing rows", "rows left"],
                        [[r[k] for k in ("suite", "reason", "severity", "gates", "failing rows", "rows left")]
                         for r in rows]), "",
        *markdown_table(["batch check", "severity", "observed", "expected", "result"],
                        [[r[k] for k in ("reason", "severity", "observed", "expected", "result")] for r in batch]), "",
        "Datasets: " + ", ".join(f"{k}: {v}" for k, v in counts.items()),
    ]) + "\n"
    create_markdown_artifact(markdown, key="curate-report", description="Curation funnel")
    (run_dir / "report.md").write_text(markdown)
    return rows
