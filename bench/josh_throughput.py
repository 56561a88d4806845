"""Benchmark: where JOSH's time goes, against what the model's forward pass can do on this machine.

Runs JOSH (the pipeline's settings: compact prompt, beam 8, agenda user) on a few training tasks
with 1 and with 2 torch threads, side by side in one run, and reports per setting: trees per
minute, the share of the wall time spent inside the model's forward pass, tokens through the
model per second (prompt tokens prefilled plus tokens decoded), and the same model's forward-pass
throughput measured alone (a decode step of 64 sequences over a 300-token cache, a prefill of 8 x
256 tokens). The gap between JOSH's tokens/s and the model's is what batching could still win;
the time outside the forward pass is Python (tokenizing, the environment, the user).

    .venv/bin/python bench/josh_throughput.py [--model DIR] [--tasks 20]
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
from models.embedded import embedded_model_dir
from roleplay import josh
from envs.registry import domain
from roleplay.rollout import agent_format, episode
from roleplay.users import AgendaUser


class ForwardMeter:
    """Tokens through the model and seconds inside its forward pass, counted by hooks."""

    def __init__(self, model: torch.nn.Module):
        self.tokens, self.seconds, self._start = 0, 0.0, 0.0
        self._hooks = [model.register_forward_pre_hook(self._before, with_kwargs=True),
                       model.register_forward_hook(self._after)]

    def stop(self) -> None:
        for hook in self._hooks:
            hook.remove()

    def _before(self, _module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.tokens += ids.numel()
        self._start = time.perf_counter()

    def _after(self, *_):
        self.seconds += time.perf_counter() - self._start


def josh_run(model_dir: Path, threads: int, task_ids: list[str]) -> dict[str, float]:
    cfg = SimulateConfig(agent=ModelConfig(spec=f"hf:{model_dir}", cpu_threads=threads), user=ModelConfig(spec="agenda"),
                         agent_prompt="compact", beam_size=8)
    bench = domain("toolwoz")
    fmt = agent_format(bench, cfg)
    agent = load_model(cfg.agent)
    meter = ForwardMeter(agent.model)
    searches = [josh.Search(episode(bench, bench.scenario(t), fmt, cfg), cfg.beam_size) for t in task_ids]
    start = time.perf_counter()
    josh.run_josh(searches, agent, AgendaUser(cfg.max_messages), cfg.agent_sampling, cfg.user_sampling)
    wall = time.perf_counter() - start
    meter.stop()
    peak = peak_throughput(agent.model)
    agent.close()
    return {"trees_per_min": 60 * len(task_ids) / wall, "wall_s": wall, "forward_share": meter.seconds / wall,
            "tokens_per_s": meter.tokens / wall, "tokens_per_forward_s": meter.tokens / meter.seconds, **peak}


@torch.inference_mode()
def peak_throughput(model: torch.nn.Module, repeats: int = 20) -> dict[str, float]:
    """Tokens/s of the model alone: decode steps (64 sequences, 300 cached tokens) and one prefill (8 x 256)."""
    vocab = model.config.vocab_size
    cache = model(input_ids=torch.randint(vocab, (64, 300)), use_cache=True, logits_to_keep=1).past_key_values
    step = torch.randint(vocab, (64, 1))
    start = time.perf_counter()
    for _ in range(repeats):  # the cache grows a little each step, as in decoding
        model(input_ids=step, past_key_values=cache, use_cache=True)
    decode = 64 * repeats / (time.perf_counter() - start)
    start = time.perf_counter()
    model(input_ids=torch.randint(vocab, (8, 256)), use_cache=True, logits_to_keep=1)
    return {"peak_decode_tokens_per_s": decode, "peak_prefill_tokens_per_s": 8 * 256 / (time.perf_counter() - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model dir (default: the embedded model)")
    parser.add_argument("--tasks", type=int, default=20, help="ToolWOZ training tasks")
    args = parser.parse_args()
    model_dir = args.model or embedded_model_dir()
    task_ids = random.Random(0).sample(load_toolwoz().splits["train"], args.tasks)
    print(f"load average before: {os.getloadavg()}")
    runs = {threads: josh_run(model_dir, threads, task_ids) for threads in (1, 2)}
    print(f"load average after: {os.getloadavg()}")
    for threads, r in runs.items():
        print(f"  {threads} thread(s): {r['trees_per_min']:5.1f} trees/min ({r['wall_s']:.0f} s), "
              f"{r['forward_share']:.0%} of it in the forward pass; {r['tokens_per_s']:,.0f} tokens/s through the model "
              f"({r['tokens_per_forward_s']:,.0f} while in it); the model alone: decode {r['peak_decode_tokens_per_s']:,.0f}, "
              f"prefill {r['peak_prefill_tokens_per_s']:,.0f} tokens/s")
    print(f"  2 threads vs 1: {runs[2]['trees_per_min'] / runs[1]['trees_per_min']:.2f}x trees/min")


if __name__ == "__main__":
    main()
