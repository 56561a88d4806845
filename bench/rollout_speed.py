"""Benchmark: how fast a local model plays dialogues, against this CPU's own roofline, before and after a change.

Measured side by side in one run, same model, same threads:
- GEMM: float32 GFLOPS of a 1024 x 1024 matmul; the roofline is that rate over the model's forward FLOPs per token
  (2 x its linear layers' weights, from its config; decode also pays the output layer);
- prefill: one 1,024-token prompt read at once; decode: 32 sequences a step over 600-token contexts, in the backend's
  preallocated cache; each in tokens/s
  and as a share of the roofline;
- evaluation: `--tasks` validation tasks (greedy agent vs the agenda user, compact prompt) and JOSH on `--trees`
  training tasks (beam 8, the smollm2 preset's sampling), each with this checkout's backend and with the backend
  `--before` names (models/hf_backend.py read from that git revision), in minutes scaled to 200 tasks and 100 trees.

    .venv/bin/python bench/rollout_speed.py --model smollm2-toolwoz [--before HEAD] [--tasks 20] [--trees 10]
                                            [--decode-engine onnxruntime]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command sets it, before torch loads

import torch  # noqa: E402
from transformers.cache_utils import Cache  # noqa: E402

from core.config import ModelConfig, SamplingConfig  # noqa: E402
from core.cpu import idle_cores  # noqa: E402
from envs.registry import domain  # noqa: E402
from models.hf_backend import _PreallocatedLayer  # noqa: E402
from models.loading import load_model  # noqa: E402
from models.specs import weights_source  # noqa: E402
from roleplay import josh  # noqa: E402
from roleplay.config import EvalConfig, SimulateConfig  # noqa: E402
from roleplay.rollout import agent_format, episode, run_episodes  # noqa: E402
from roleplay.users import AgendaUser  # noqa: E402
from envs.registry import select_tasks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def gemm_gflops(size: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def flops_per_token(model: torch.nn.Module) -> tuple[float, float]:
    """(prefill, decode) FLOPs per token: 2 x the weights of the linear layers each token goes through."""
    linear = sum(m.weight.numel() for name, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and not name.endswith("lm_head"))
    head = model.get_output_embeddings().weight.numel()
    return 2.0 * linear, 2.0 * (linear + head)


@torch.inference_mode()
def model_speed(model: torch.nn.Module) -> dict[str, float]:
    vocab = model.config.vocab_size
    model(input_ids=torch.randint(vocab, (1, 64)))
    start = time.perf_counter()
    model(input_ids=torch.randint(vocab, (1, 1024)), use_cache=True, logits_to_keep=1)
    prefill = 1024 / (time.perf_counter() - start)
    one = model(input_ids=torch.randint(vocab, (1, 600)), use_cache=True, logits_to_keep=1).past_key_values
    cache = Cache(layers=[_PreallocatedLayer([layer.keys] * 32, [layer.values] * 32, 600, 32) for layer in one.layers])
    step, steps = torch.randint(vocab, (32, 1)), 16
    start = time.perf_counter()
    for k in range(steps):  # the backend's decode step: a preallocated cache, explicit mask and positions
        model(input_ids=step, attention_mask=torch.ones(32, 601 + k, dtype=torch.long), past_key_values=cache,
              position_ids=torch.full((32, 1), 600 + k), use_cache=True)
    return {"prefill": prefill, "decode": 32 * steps / (time.perf_counter() - start)}


def backend_at(rev: str):
    """models/hf_backend.py as it was at `rev`, imported beside today's."""
    source = subprocess.run(["git", "show", f"{rev}:models/hf_backend.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "hf_backend_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("hf_backend_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rollout_minutes(make_model, spec: str, threads: int, n_tasks: int, n_trees: int,
                    engine: str = "torch") -> dict[str, float]:
    model_cfg = ModelConfig(spec=spec, cpu_threads=threads, decode_engine=engine)
    bench = domain("toolwoz")
    out = {}
    evaluation = EvalConfig(agent=model_cfg, agent_prompt="compact", split="val", n_tasks=n_tasks)
    fmt = agent_format(bench, evaluation)
    episodes = [episode(bench, bench.scenario(t), fmt, evaluation) for t in select_tasks("toolwoz", "val", n_tasks, 0)]
    agent = make_model(model_cfg)
    start = time.perf_counter()
    run_episodes(episodes, agent, AgendaUser(evaluation.max_messages), evaluation.agent_sampling,
                 evaluation.user_sampling)
    out["eval_min_per_200"] = (time.perf_counter() - start) / 60 * 200 / n_tasks
    out["eval_success"] = sum(e.env.reward().success for e in episodes) / n_tasks
    agent.close()
    if n_trees:
        simulate = SimulateConfig(agent=model_cfg, agent_prompt="compact", beam_size=8,
                                  agent_sampling=SamplingConfig(temperature=0.5, seed=0))
        fmt = agent_format(bench, simulate)
        searches = [josh.Search(episode(bench, bench.scenario(t), fmt, simulate), simulate.beam_size)
                    for t in select_tasks("toolwoz", "train", n_trees, 0)]
        agent = make_model(model_cfg)
        start = time.perf_counter()
        josh.run_josh(searches, agent, AgendaUser(simulate.max_messages), simulate.agent_sampling,
                      simulate.user_sampling)
        out["josh_min_per_100"] = (time.perf_counter() - start) / 60 * 100 / n_trees
        agent.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-toolwoz", help="model spec (default: smollm2-toolwoz)")
    parser.add_argument("--before", default="HEAD", help="git revision whose backend is the baseline")
    parser.add_argument("--tasks", type=int, default=20, help="validation tasks per evaluation")
    parser.add_argument("--trees", type=int, default=10, help="JOSH training tasks (0: skip JOSH)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the idle cores)")
    parser.add_argument("--decode-engine", default="torch", choices=["torch", "onnxruntime"],
                        help="this checkout's decode engine (the baseline's is torch)")
    args = parser.parse_args()
    threads = args.threads or idle_cores()
    torch.set_num_threads(threads)
    print(f"threads {threads}; load average before: {os.getloadavg()}")
    gflops = gemm_gflops()
    path = weights_source(ModelConfig(spec=args.model))
    today = load_model(ModelConfig(spec=args.model, cpu_threads=threads))
    prefill_flops, decode_flops = flops_per_token(today.model)
    speed = model_speed(today.model)
    today.close()
    print(f"GEMM {gflops:.1f} GFLOPS -> roofline prefill {gflops * 1e9 / prefill_flops:,.0f} tokens/s, decode "
          f"{gflops * 1e9 / decode_flops:,.0f} tokens/s")
    print(f"model alone: prefill {speed['prefill']:,.0f} tokens/s ({speed['prefill'] * prefill_flops / gflops / 1e9:.0%}"
          f" of the roofline), decode x32 {speed['decode']:,.0f} tokens/s "
          f"({speed['decode'] * decode_flops / gflops / 1e9:.0%})")
    before = backend_at(args.before)
    runs = {f"before ({args.before})": (lambda cfg: before.HFChatModel(cfg, path), "torch"),
            f"after (this checkout, {args.decode_engine})": (load_model, args.decode_engine)}
    for name, (make, engine) in runs.items():
        r = rollout_minutes(make, args.model, threads, args.tasks, args.trees, engine)
        print(f"  {name}: evaluation {r['eval_min_per_200']:.1f} min per 200 tasks (success {r['eval_success']:.0%} of "
              f"{args.tasks})" + (f", JOSH {r['josh_min_per_100']:.1f} min per 100 trees" if args.trees else ""),
              flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    sys.exit(main())
