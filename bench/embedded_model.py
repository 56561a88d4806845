"""Benchmark: how good is the embedded model, on held-out ToolWOZ validation dialogues?

Agent side, on validation turns where the human agent made an API call (prompt = the agent's
view of the conversation so far):
  - valid call rate, greedy and sampled (T=1): a parseable APICALL the tools would accept;
  - exact call match, greedy: the same API and the same non-empty arguments;
  - best-of-8 exact: at least one of 8 samples is exact;
  - spurious call rate: greedy calls on turns where the human agent only spoke.
User side: over simulated dialogues (embedded agent vs embedded user) on validation goals,
the share of the goal's slot values the user simulator mentions.
Speed: training tokens/s (from the model's bootstrap.json) and generation tokens/s here.

    .venv/bin/python bench/embedded_model.py [--model DIR] [--turns 200] [--dialogues 20]

Targets (issue 3, 10-minute budget): >= 85% valid greedy, >= 10% exact greedy, >= 15% best-of-8.
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
from envs.toolwoz import ToolWOZEnv, load_toolwoz
from envs.toolwoz.data import is_empty
from envs.toolwoz.tools import same_call, validation_error
from envs.toolwoz.transcripts import human_dialogues
from models import load_model
from models.embedded import embedded_model_dir
from tasks.react import agent_view, parse_action, system_prompt
from tasks.rollout import Episode, run_episodes

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


def goal_mentions(data, model, task_ids):
    """Share of each goal's slot values that the simulated user says during the dialogue."""
    system = system_prompt(data.tool_schemas, "compact")
    episodes = [Episode(Scenario(domain="toolwoz", task_id=i, instruction=data.tasks[i].instruction),
                        ToolWOZEnv(data, data.tasks[i]), system) for i in task_ids]
    run_episodes(episodes, model, model, GREEDY, SamplingConfig(max_new_tokens=64))
    shares, rewards = [], []
    for e in episodes:
        said = " ".join(m.content.lower() for m in e.visible if m.role == "user")
        goal = data.tasks[e.scenario.task_id].goals.values()
        values = {str(v).lower() for g in goal for params in (g.search or {}, g.book or {})
                  for k, v in params.items() if isinstance(v, str) and not is_empty(v)}
        shares.append(sum(v in said for v in values) / len(values) if values else 1.0)
        rewards.append(e.to_dialogue().outcome.reward)
    return {"simulated_dialogues": len(episodes), "goal_values_mentioned": sum(shares) / len(shares),
            "simulated_avg_reward": sum(rewards) / len(rewards)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model dir (default: the embedded model, trained if missing)")
    parser.add_argument("--turns", type=int, default=200, help="call turns and speak turns sampled from validation")
    parser.add_argument("--dialogues", type=int, default=20, help="simulated dialogues for the user-side figure")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    args = parser.parse_args()

    model_dir = args.model or embedded_model_dir()
    data = load_toolwoz()
    rng = random.Random(0)
    val = human_dialogues(data, "val")
    turns = agent_turns(data, val, system_prompt(data.tool_schemas, "compact"))
    call_turns = rng.sample([t for t in turns if t[1] is not None], args.turns)
    speak_turns = rng.sample([t for t in turns if t[1] is None], args.turns)
    model = load_model(ModelConfig(spec=f"hf:{model_dir}", cpu_threads=args.threads))

    print(f"model: {model_dir}\nload average before: {os.getloadavg()}")
    results = call_quality(data, model, call_turns)
    results["spurious_call_rate"] = spurious_calls(model, speak_turns)
    results.update(goal_mentions(data, model, rng.sample(data.splits["val"], args.dialogues)))
    trained = json.loads((model_dir / "bootstrap.json").read_text()) if (model_dir / "bootstrap.json").is_file() else {}
    results["training_tokens_per_s"] = trained.get("tokens_per_s")
    results["training_tokens"] = trained.get("tokens")
    print(f"load average after: {os.getloadavg()}")
    for key, value in results.items():
        print(f"  {key:<26} {value:.3f}" if isinstance(value, float) else f"  {key:<26} {value}")


if __name__ == "__main__":
    main()
