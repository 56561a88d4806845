"""Benchmark: which base model JOSH should harvest from, with and without structured generation.

For each base (a model spec) and each of constrained = off / on (formats/grammar.py), JOSH runs on the same
`--trees` ToolWOZ training tasks with the smollm2 preset's settings (compact prompt, beam 8, temperature 0.5, the
agenda user), one after another in one run, and reports: the agent's calls over every branch, the share the tools
accepted (valid-call rate), the golden paths (trees that earned every sub-goal: SFT rows) and golden paths per
CPU-hour (wall time x torch threads).

    .venv/bin/python bench/base_choice.py [--bases smollm2 smollm2-toolwoz] [--trees 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command sets it, before torch loads

from core.config import ModelConfig, SamplingConfig  # noqa: E402
from core.cpu import idle_cores  # noqa: E402
from core.types import JoshTree  # noqa: E402
from envs.registry import domain  # noqa: E402
from models.loading import load_model  # noqa: E402
from roleplay import josh  # noqa: E402
from roleplay.config import SimulateConfig  # noqa: E402
from roleplay.harvest import is_error_message  # noqa: E402
from roleplay.rollout import agent_format, episode  # noqa: E402
from roleplay.users import AgendaUser  # noqa: E402
from envs.registry import select_tasks  # noqa: E402


def calls(trees: list[JoshTree]) -> tuple[int, int]:
    """(calls made, calls the tools accepted) over every agent turn of every branch."""
    results = [m for tree in trees for node in tree.nodes for m in node.messages[node.turn_start:] if m.role == "tool"]
    return len(results), sum(not is_error_message(m) for m in results)


def harvest(spec: str, constrained: bool, task_ids: list[str], threads: int) -> dict[str, float]:
    cfg = SimulateConfig(agent=ModelConfig(spec=spec, cpu_threads=threads), agent_prompt="compact", beam_size=8,
                         constrained=constrained, agent_sampling=SamplingConfig(temperature=0.5, seed=0))
    bench = domain("toolwoz")
    fmt = agent_format(bench, cfg)
    searches = [josh.Search(episode(bench, bench.scenario(t), fmt, cfg), cfg.beam_size) for t in task_ids]
    agent = load_model(cfg.agent)
    start = time.perf_counter()
    trees = josh.run_josh(searches, agent, AgendaUser(cfg.max_messages), cfg.agent_sampling, cfg.user_sampling)
    hours = (time.perf_counter() - start) / 3600
    agent.close()
    made, valid = calls(trees)
    golden = sum(any(n.is_golden for n in tree.nodes) for tree in trees)
    return {"calls": made, "valid": valid / made if made else 0.0, "golden": golden, "minutes": hours * 60,
            "golden_per_cpu_hour": golden / (hours * threads), "reward": sum(t.dialogue.outcome.reward for t in trees)
            / len(trees)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", nargs="+", default=["smollm2", "smollm2-toolwoz"], help="model specs")
    parser.add_argument("--trees", type=int, default=20, help="ToolWOZ training tasks")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the idle cores)")
    args = parser.parse_args()
    threads = args.threads or idle_cores()
    task_ids = select_tasks("toolwoz", "train", args.trees, 0)
    print(f"threads {threads}; load average before: {os.getloadavg()}")
    print("| base | constrained | calls | valid-call rate | golden paths | mean reward | minutes | golden / CPU-hour |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in args.bases:
        for constrained in (False, True):
            r = harvest(spec, constrained, task_ids, threads)
            print(f"| {spec} | {'yes' if constrained else 'no'} | {r['calls']} | {r['valid']:.1%} | {r['golden']} of "
                  f"{args.trees} | {r['reward']:.3f} | {r['minutes']:.1f} | {r['golden_per_cpu_hour']:.1f} |", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
