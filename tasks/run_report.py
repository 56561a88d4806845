"""A run's outputs, written alike by every stage: its datasets, its markdown tables, its metric report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel

from core import records
from core.types import Dialogue


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """The lines of a markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def save_datasets(run_dir: Path, dialogues: list[Dialogue], tables: dict[str, list[dict]]) -> dict[str, int]:
    """The run's dialogues (a Hugging Face dataset, and JSONL for eyeballing) and its training sets (`sft`, `dpo`,
    `kto`, `trees`), each with its declared columns; rows per dataset."""
    records.dialogues_to_dataset(dialogues).save_to_disk(str(run_dir / "dialogues"))
    records.write_jsonl(dialogues, run_dir / "dialogues.jsonl")
    for name, rows in tables.items():
        records.training_dataset(name, rows).save_to_disk(str(run_dir / name), num_shards=1)  # 1: empty ones load too
    return {"dialogues": len(dialogues), **{name: len(rows) for name, rows in tables.items()}}


def publish_metrics(rows: list[dict[str, str]], cfg: BaseModel, run_dir: Path, key: str, title: str) -> Path:
    """`rows` as {metric, value}: a table artifact, a markdown artifact, report.md and config.json; the artifacts are
    keyed `<key>-summary` and `<key>-report`."""
    create_table_artifact(rows, key=f"{key}-summary", description=title)
    markdown = "\n".join([f"# {title}", f"Run folder `{run_dir}`.", "",
                          *markdown_table(["metric", "value"], [(r["metric"], r["value"]) for r in rows])]) + "\n"
    create_markdown_artifact(markdown, key=f"{key}-report", description=title)
    (run_dir / "report.md").write_text(markdown)
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=1))
    return run_dir / "report.md"
