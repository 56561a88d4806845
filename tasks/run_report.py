"""A run's metric table published once: a table artifact, a markdown artifact, report.md and config.json."""

from __future__ import annotations

from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel


def publish_metrics(rows: list[dict[str, str]], cfg: BaseModel, run_dir: Path, key: str, title: str) -> Path:
    """`rows` as {metric, value}; the artifacts are keyed `<key>-summary` and `<key>-report`."""
    create_table_artifact(rows, key=f"{key}-summary", description=title)
    markdown = "\n".join([f"# {title}", f"Run folder `{run_dir}`.", "", "| metric | value |", "|---|---|",
                          *(f"| {r['metric']} | {r['value']} |" for r in rows)]) + "\n"
    create_markdown_artifact(markdown, key=f"{key}-report", description=title)
    (run_dir / "report.md").write_text(markdown)
    (run_dir / "config.json").write_text(cfg.model_dump_json(indent=1))
    return run_dir / "report.md"
