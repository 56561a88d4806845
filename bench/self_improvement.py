"""Benchmark: does self-training help? Base vs SFT vs DPO on the same held-out ToolWOZ tasks and seeds.

Runs the pipeline (cached stages are reused) and prints, per stage: success and average reward with
95% bootstrap intervals over tasks, the paired change against the stage before (significant when
the interval excludes 0), and per-domain success; plus what the gain rests on: harvest size, the
curation funnel and the training curves.

    .venv/bin/python bench/self_improvement.py [--set key=value ...]   # e.g. --set source=josh-trees

Goal (issue 16): on at least 200 validation tasks, a significant gain of SFT over base and of DPO over SFT.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from core.config import build_config
from flows.pipeline_config import PipelineConfig
from core.paths import configure_prefect
from core.records import read_jsonl


def per_domain(run_dir: str) -> dict[str, float]:
    """Success rate per domain of the task's goals (a multi-domain task counts in each of its domains)."""
    from envs.toolwoz.data import load_toolwoz

    data, wins = load_toolwoz(), defaultdict(list)
    for d in read_jsonl(Path(run_dir) / "dialogues.jsonl"):
        for domain in data.tasks[d.scenario.task_id].goals:
            wins[domain].append(d.outcome.success)
    return {domain: round(sum(v) / len(v), 3) for domain, v in sorted(wins.items())}


def diagnostics(run_dir: str) -> dict[str, float]:
    """How often the agent's next call carried a value the customer said, and per API the share of right calls."""
    from envs.toolwoz.data import load_toolwoz
    from envs.toolwoz.diagnostics import api_accuracy, copy_rate

    data, dialogues = load_toolwoz(), read_jsonl(Path(run_dir) / "dialogues.jsonl")
    return {"copy_rate": round(copy_rate(data, dialogues), 3),
            **{name: round(v, 3) for name, v in api_accuracy(data, dialogues).items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    configure_prefect()
    from flows.pipeline import pipeline

    cfg = build_config(PipelineConfig, "pipeline", args.overrides)
    report = pipeline(cfg)
    for row in report.table:
        print(json.dumps(row))
    print(json.dumps({"per_domain_success": {stage: per_domain(run) for stage, run in report.evaluations.items()}},
                     indent=1))
    print(json.dumps({"copy_rate_and_api_accuracy": {stage: diagnostics(run) for stage, run in report.evaluations.items()}},
                     indent=1))
    print(json.dumps({"harvest": report.harvest}))
    print((Path(report.curated) / "report.md").read_text())
    for name, path in report.adapters.items():
        training = json.loads((Path(path).parent / "training.json").read_text())
        curve = [round(loss, 3) for _, loss in training["curve"][:: max(1, len(training["curve"]) // 10)]]
        print(f"{name}: {training['rows']} rows, {training['steps']} steps, {training['seconds']:.0f} s, loss {curve}")
    print(f"stages: {report.stages}")


if __name__ == "__main__":
    main()
