"""Benchmark: JOSH with every leaf of a turn in one batched call vs one generate call per leaf.

Same model, tasks, beam and seeds; only how the leaves reach the model differs. Reports
dialogues (trees) per minute for both, side by side in one run, and the machine's load.

    .venv/bin/python bench/josh_batching.py [--model DIR] [--tasks 6] [--beam 8]

Target (issue 4): batched >= 3x the per-leaf rate at beam 8.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import torch

from core.config import ModelConfig
from roleplay.config import SimulateConfig
from envs.toolwoz.data import load_toolwoz
from models.loading import load_model
from models.base import ChatModel
from models.embedded import embedded_model_dir
from roleplay import josh
from envs.registry import domain
from roleplay.rollout import agent_format, episode


class OneCallPerLeaf(ChatModel):
    """The unbatched baseline: the same model, called once per prompt."""

    def __init__(self, inner: ChatModel):
        self.inner, self.spec = inner, inner.spec

    def generate(self, prompts, sampling, n=1):
        return [self.inner.generate([p], sampling, n)[0] for p in prompts]

    def fingerprint(self):
        return self.inner.fingerprint()


def run(model: ChatModel, task_ids: list[str], beam: int) -> dict[str, float]:
    cfg = SimulateConfig(beam_size=beam)
    bench = domain("toolwoz")
    fmt = agent_format(bench, cfg)
    agent_sampling = cfg.agent_sampling.model_copy(update={"seed": None})  # one seed per run, set below
    user_sampling = cfg.user_sampling.model_copy(update={"seed": None})
    torch.manual_seed(0)
    searches = [josh.Search(episode(bench, bench.scenario(t), fmt, cfg), beam) for t in task_ids]
    start = time.perf_counter()
    trees = josh.run_josh(searches, model, model, agent_sampling, user_sampling)
    seconds = time.perf_counter() - start
    turns = sum(len(t.nodes) for t in trees)
    return {"dialogues_per_min": 60 * len(trees) / seconds, "agent_turns_per_s": turns / seconds,
            "seconds": seconds, "nodes": turns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model dir (default: the embedded model)")
    parser.add_argument("--tasks", type=int, default=6, help="ToolWOZ training tasks")
    parser.add_argument("--beam", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    parser.add_argument("--batch-size", type=int, default=ModelConfig().batch_size, help="sequences decoded together")
    args = parser.parse_args()

    model = load_model(ModelConfig(spec=f"hf:{args.model or embedded_model_dir()}", cpu_threads=args.threads,
                                   batch_size=args.batch_size))
    task_ids = random.Random(0).sample(load_toolwoz().splits["train"], args.tasks)
    print(f"load average before: {os.getloadavg()}")
    batched = run(model, task_ids, args.beam)
    model.prefixes.clear()  # the baseline must not reuse the batched run's prompts
    per_leaf = run(OneCallPerLeaf(model), task_ids, args.beam)
    print(f"load average after: {os.getloadavg()}")
    for name, r in (("batched leaves", batched), ("one call per leaf", per_leaf)):
        print(f"  {name:<18} {r['dialogues_per_min']:6.2f} dialogues/min  {r['agent_turns_per_s']:6.2f} agent turns/s"
              f"  ({r['nodes']} turns in {r['seconds']:.0f} s)")
    print(f"  speed-up: {batched['dialogues_per_min'] / per_leaf['dialogues_per_min']:.1f}x dialogues/min, "
          f"{batched['agent_turns_per_s'] / per_leaf['agent_turns_per_s']:.1f}x agent turns/s")


if __name__ == "__main__":
    main()
