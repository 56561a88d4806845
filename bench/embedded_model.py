"""Benchmark: how good is the embedded model, and the agenda user it plays against, on ToolWOZ validation?

Agent side, on validation turns where the human agent made an API call (prompt = the agent's
view of the conversation so far):
  - valid call rate, greedy and sampled (T=1): a parseable APICALL the tools would accept;
  - exact call match, greedy: the same API and the same non-empty arguments;
  - best-of-8 exact: at least one of 8 samples is exact;
  - spurious call rate: greedy calls on turns where the human agent only spoke.
Agenda user, against the scripted perfect agent (ground-truth calls once their values were
said): the share of goal values the user conveys, and success next to the oracle ceiling.
End to end: the embedded agent (greedy) against the agenda user: success, average reward and
per-API call accuracy (share of that API's ground-truth calls earned).
Embedded customer (the model in the user role, no longer trained for it by default): the
share of goal values it mentions. Speed: training tokens/s (bootstrap.json), generation tokens/s.

    .venv/bin/python bench/embedded_model.py [--model DIR] [--turns 200] [--agenda-tasks 100] [--e2e-tasks 100]

Targets (issue 14): the agenda user conveys >= 98% of goal values and the perfect agent's success
is within 3 points of the oracle's; the embedded agent vs the agenda user succeeds on >= 3%.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from core.config import ModelConfig, SamplingConfig
from core.types import Scenario

from envs.registry import domain
from envs.toolwoz.data import load_toolwoz
from envs.toolwoz.env import ToolWOZEnv, oracle_reward
from envs.toolwoz.agenda import conveyed_values
from envs.toolwoz.diagnostics import api_accuracy, copy_rate
from roleplay.scripted_agent import play_scripted
from envs.toolwoz.tools import same_call, validation_error
from envs.toolwoz.transcripts import human_dialogues
from models.loading import load_model
from models.embedded import embedded_model_dir
from formats.react import agent_view, parse_action
from roleplay.rollout import AgentFormat, Episode, run_episodes
from roleplay.users import AgendaUser

GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=96)
SAMPLED = SamplingConfig(temperature=1.0, max_new_tokens=96, seed=0)


def agent_turns(data, dialogues, system):
    """(prompt, reference call or None) for every agent step of the dialogues."""
    turns = []
    for d in dialogues:
        for i, m in enumerate(d.messages):
            if m.role == "assistant":
                turns.append((agent_view(system, list(d.messages[:i])), m.tool_calls[0] if m.tool_calls else None))
    return turns


def call_quality(data, model, call_turns, n_samples: int = 8):
    def valid(text):
        call = parse_action(text).call
        return call is not None and validation_error(data, call) is None

    prompts = [p for p, _ in call_turns]
    start = time.perf_counter()
    greedy = [g[0] for g in model.generate(prompts, GREEDY)]
    seconds = time.perf_counter() - start
    sampled = model.generate(prompts, SAMPLED, n=n_samples)
    exact = [[valid(g.text) and same_call(parse_action(g.text).call, ref) for g in gens]
             for gens, (_, ref) in zip(sampled, call_turns)]
    return {
        "call_turns": len(call_turns),
        "valid_greedy": sum(valid(g.text) for g in greedy) / len(greedy),
        "valid_sampled": sum(valid(g.text) for gens in sampled for g in gens) / (len(sampled) * n_samples),
        "exact_greedy": sum(valid(g.text) and same_call(parse_action(g.text).call, ref)
                            for g, (_, ref) in zip(greedy, call_turns)) / len(greedy),
        f"best_of_{n_samples}_exact": sum(any(e) for e in exact) / len(exact),
        "generation_tokens_per_s": sum(g.completion_tokens for g in greedy) / seconds,
    }


def spurious_calls(model, speak_turns):
    greedy = [g[0] for g in model.generate([p for p, _ in speak_turns], GREEDY)]
    return sum(parse_action(g.text).attempted_call for g in greedy) / len(greedy)


def _episodes(data, task_ids):
    system = AgentFormat.react(domain("toolwoz").react_system("compact"))
    return [Episode(Scenario(domain="toolwoz", task_id=i, instruction=data.tasks[i].instruction),
                    ToolWOZEnv(data, data.tasks[i]), system) for i in task_ids]


def goal_mentions(data, model, task_ids):
    """The embedded model playing the customer too: the share of its goals' values it says."""
    episodes = run_episodes(_episodes(data, task_ids), model, model, GREEDY, SamplingConfig(max_new_tokens=64))
    rewards = [e.to_dialogue().outcome.reward for e in episodes]
    return {"embedded_customer_dialogues": len(episodes),
            "embedded_customer_goal_values_mentioned": conveyed_share(data, episodes),
            "embedded_customer_avg_reward": sum(rewards) / len(rewards)}


def conveyed_share(data, episodes) -> float:
    """Share of the goals' values (search constraints, booking details) the customer said, over all dialogues."""
    counts = [conveyed_values(data.tasks[e.scenario.task_id], " ".join(m.content for m in e.visible if m.role == "user"))
              for e in episodes]
    return sum(said for said, _ in counts) / sum(total for _, total in counts)


def agenda_user_ceiling(data, task_ids):
    """The agenda user against the scripted perfect agent: what it conveys, and success next to the oracle's."""
    episodes = play_scripted(_episodes(data, task_ids), data.tasks, AgendaUser(), SamplingConfig())
    return {"agenda_tasks": len(task_ids), "agenda_goal_values_conveyed": conveyed_share(data, episodes),
            "perfect_agent_success": sum(e.to_dialogue().outcome.success for e in episodes) / len(episodes),
            "oracle_success": sum(oracle_reward(data, data.tasks[i]).success for i in task_ids) / len(task_ids)}


def end_to_end(data, model, task_ids):
    """The embedded agent, greedy, against the agenda user: success, reward, copy rate, per-API accuracy."""
    episodes = run_episodes(_episodes(data, task_ids), model, AgendaUser(), GREEDY, SamplingConfig())
    dialogues = [e.to_dialogue() for e in episodes]
    outcomes = [d.outcome for d in dialogues]
    return {"e2e_tasks": len(task_ids), "e2e_success": sum(o.success for o in outcomes) / len(outcomes),
            "e2e_avg_reward": sum(o.reward for o in outcomes) / len(outcomes),
            "e2e_copy_rate": copy_rate(data, dialogues),
            "e2e_turn_cap": sum(o.termination.value == "turn_cap" for o in outcomes) / len(outcomes),
            "e2e_goal_values_conveyed": conveyed_share(data, episodes),
            **{f"e2e_accuracy_{name}": v for name, v in api_accuracy(data, dialogues).items()}}


def measure(data, model_dir: Path, call_turns, speak_turns, args) -> dict:
    model = load_model(ModelConfig(spec=f"hf:{model_dir}", cpu_threads=args.threads))
    results = call_quality(data, model, call_turns)
    results["spurious_call_rate"] = spurious_calls(model, speak_turns)
    results.update(end_to_end(data, model, sorted(random.Random(0).sample(data.splits["val"], args.e2e_tasks))))
    if args.dialogues:
        results.update(goal_mentions(data, model, random.Random(1).sample(data.splits["val"], args.dialogues)))
    trained = json.loads((model_dir / "bootstrap.json").read_text()) if (model_dir / "bootstrap.json").is_file() else {}
    results["training_tokens_per_s"] = trained.get("tokens_per_s")
    results["training_tokens"] = trained.get("tokens")
    model.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append",
                        help="model dir, repeatable: models side by side (default: the embedded model, trained if missing)")
    parser.add_argument("--turns", type=int, default=200, help="call turns and speak turns sampled from validation")
    parser.add_argument("--dialogues", type=int, default=20, help="dialogues with the embedded model as customer (0: skip)")
    parser.add_argument("--agenda-tasks", type=int, default=100, help="validation tasks for the agenda user vs the perfect agent")
    parser.add_argument("--e2e-tasks", type=int, default=100, help="validation tasks for the embedded agent vs the agenda user")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    args = parser.parse_args()

    model_dirs = args.model or [embedded_model_dir()]
    data = load_toolwoz()
    rng = random.Random(0)
    val = human_dialogues(data, "val")
    turns = agent_turns(data, val, domain("toolwoz").react_system("compact"))
    call_turns = rng.sample([t for t in turns if t[1] is not None], args.turns)
    speak_turns = rng.sample([t for t in turns if t[1] is None], args.turns)

    print(f"models: {', '.join(map(str, model_dirs))}\nload average before: {os.getloadavg()}")
    shared = agenda_user_ceiling(data, sorted(random.Random(0).sample(data.splits["val"], args.agenda_tasks)))
    columns = [measure(data, d, call_turns, speak_turns, args) for d in model_dirs]
    print(f"load average after: {os.getloadavg()}")
    for key, value in shared.items():
        print(f"  {key:<32} {value:.3f}" if isinstance(value, float) else f"  {key:<32} {value}")
    print(f"  {'':<32} " + " ".join(f"{d.name[-20:]:>20}" for d in model_dirs))
    for key in dict.fromkeys(k for c in columns for k in c):
        cells = [c.get(key) for c in columns]
        print(f"  {key:<32} " + " ".join(f"{v:>20.3f}" if isinstance(v, float) else f"{v!s:>20}" for v in cells))


if __name__ == "__main__":
    main()
