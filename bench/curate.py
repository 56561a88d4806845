"""Benchmark: how fast the curate stage filters, from 10k to 1M dialogue rows.

Validation: the shipped row suites (roleplay, josh) on a synthetic metric table (columns drawn
with realistic failure rates), COMPLETE result format, reasons gathered per row; then the
batch suite. Measuring: the per-dialogue metric table (repetition, diversity, prompt shape,
near-duplicate clusters) on synthetic dialogues. Target (issue 15): 100k rows validate in
under 10 s. Times are wall-clock on a shared machine: compare the sizes within one run.

    .venv/bin/python bench/curate.py [--sizes 10000 100000 1000000] [--dialogues 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd

from core.types import Dialogue, Message, Outcome, Scenario, Termination
from quality.dialogue_table import batch_summary, dialogue_table
from quality.suites import load_suite
from quality.validation import check_batch, filter_rows
from formats.react import format_speak

WORDS = "hotel train restaurant cheap north south centre moderate expensive friday monday people night book".split()


def synthetic_table(n: int, rng: np.random.Generator) -> pd.DataFrame:
    ints = lambda p: (rng.random(n) < p).astype("int64")  # noqa: E731  a count that is 1 with probability p
    return pd.DataFrame({
        "id": [f"toolwoz/t{i}" for i in range(n)], "reward": rng.choice([0.0, 0.5, 1.0], n, p=[0.5, 0.3, 0.2]),
        "errors_on_path": ints(0.1), "no_prompt": ints(0.01), "multiple_prompts": ints(0.01), "max_repeat_run": 1 + ints(0.02),
        "self_replies": ints(0.01), "role_flips": ints(0.01), "ended_properly": rng.random(n) < 0.7,
        "repeated_utterance_rate": rng.random(n) * 0.4, "goal_values_conveyed": rng.random(n),
        "persona_adherence": pd.array(np.where(rng.random(n) < 0.5, rng.random(n), np.nan), dtype="Float64"),
        "is_near_duplicate": rng.random(n) < 0.05,
    })


def synthetic_dialogues(n: int, rng: np.random.Generator) -> list[Dialogue]:
    def said(k: int) -> str:
        return " ".join(rng.choice(WORDS, k))
    return [Dialogue(scenario=Scenario(domain="synthetic", task_id=f"t{i}", instruction="book"),
                     messages=tuple(m for _ in range(4) for m in (Message(role="user", content=said(12)),
                                                                  Message(role="assistant", content=format_speak(said(15))))),
                     outcome=Outcome(reward=1.0, success=True, termination=Termination.user_ended, turns=8))
            for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dialogues", type=int, default=10_000, help="dialogues for the metric-table timing")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows, batch = [load_suite("roleplay"), load_suite("josh")], [load_suite("batch")]
    filter_rows(synthetic_table(100, rng), rows)  # warm-up: imports and GX's first context
    out = {"load_average": os.getloadavg()[0]}
    for n in args.sizes:
        table = synthetic_table(n, rng)
        start = time.perf_counter()
        verdicts = filter_rows(table, rows)
        validate = time.perf_counter() - start
        start = time.perf_counter()
        check_batch({"kept_share": 1 - len(verdicts.dropped) / n, "distinct_2": 0.3, "duplicate_ids": 0,
                     "largest_near_duplicate_cluster": 1}, batch)
        out[f"validate_{n}_rows_s"] = round(validate, 3)
        out[f"batch_check_{n}_rows_s"] = round(time.perf_counter() - start, 3)
        out[f"kept_share_{n}"] = round(1 - len(verdicts.dropped) / n, 3)
    dialogues = synthetic_dialogues(args.dialogues, rng)
    start = time.perf_counter()
    table = dialogue_table(dialogues)
    out[f"metric_table_{args.dialogues}_dialogues_s"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    batch_summary(table, list(range(len(table))), dialogues)
    out[f"batch_summary_{args.dialogues}_dialogues_s"] = round(time.perf_counter() - start, 3)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
