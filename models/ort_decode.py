"""Decode steps in ONNX Runtime, on attention states torch computed (`decode_engine=onnxruntime`).

On this CPU the batched decode step is the slow half of a rollout: torch decodes 32 SmolLM2 rows at 134-145
tokens/s, while ONNX Runtime GenAI's graph for the same weights (its model builder: fused GroupQueryAttention, past
and present states in one buffer) decodes them at 295-324 (`bench/onnx_runtime.py`). Prompts are still read by
torch, through the prefix tree; their states are copied once into buffers the graph reads and writes in place
(IO binding, nothing copied per step). The graph is built from the model's weights, adapter merged, once per
weights (cached like a model).
"""

from __future__ import annotations

import copy
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from core.cache import build_once
from core.errors import ModelSpecError
from core.fingerprint import code_fingerprint, stable_hash
from core.paths import cache_dir

INSTALL = "pip install onnxruntime onnxruntime-genai onnx onnx-ir"


def check_installed() -> str:
    """ONNX Runtime GenAI's version; a clear error, before any run, where it or what its builder needs is missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxruntime_genai  # noqa: F401

        return version("onnxruntime-genai")
    except (ImportError, PackageNotFoundError):
        raise ModelSpecError(f"decode_engine=onnxruntime needs ONNX Runtime and its GenAI model builder: {INSTALL}") from None


def graph_dir(weights_key: str) -> Path:
    """The cache folder of the graph for weights named by `weights_key` (a model fingerprint)."""
    key = stable_hash(weights_key, check_installed(), code_fingerprint(__name__))[:12]
    return cache_dir() / "models" / f"onnx-decode-{key}"


def build_graph(model: torch.nn.Module, tokenizer, out: Path) -> None:
    """GenAI's builder run on the model's weights (a LoRA adapter merged into a copy), float32 for the CPU."""
    merged = copy.deepcopy(model)
    if hasattr(merged, "merge_and_unload"):
        merged = merged.merge_and_unload()
    with tempfile.TemporaryDirectory(prefix="selftrain-onnx-") as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        del merged
        done = subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", tmp, "-o", str(out),
                               "-p", "fp32", "-e", "cpu", "-c", str(Path(tmp) / "build")], capture_output=True, text=True)
    if done.returncode:
        raise ModelSpecError(f"ONNX Runtime GenAI could not build a graph of this model: {done.stderr.strip()[-500:]}")


class OrtDecoder:
    """Decode steps of a batch whose states sit in [layers, rows, heads, capacity, dim] buffers, each row's from its
    start; the graph writes each new token's states after a row's, in place."""

    def __init__(self, folder: Path, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])

    def start(self, keys: torch.Tensor, values: torch.Tensor, lengths: list[int], vocab: int) -> None:
        """Decode from these buffers; `lengths`: the states each row holds."""
        self.keys, self.values, self.lengths = keys, values, list(lengths)
        self.logits = torch.empty(keys.shape[1], 1, vocab)  # held here: the graph writes into it
        self.binding = self.session.io_binding()
        self.binding.bind_output("logits", "cpu", 0, np.float32, list(self.logits.shape), self.logits.data_ptr())
        for layer in range(keys.shape[0]):
            for kind, states in (("key", keys[layer]), ("value", values[layer])):
                shape = list(states.shape)
                self.binding.bind_input(f"past_key_values.{layer}.{kind}", "cpu", 0, np.float32, shape, states.data_ptr())
                self.binding.bind_output(f"present.{layer}.{kind}", "cpu", 0, np.float32, shape, states.data_ptr())

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Each row's next token read; the logits after it [rows, 1, vocab] (overwritten by the next step)."""
        lengths = np.asarray(self.lengths)
        mask = (np.arange(lengths.max() + 1) <= lengths[:, None]).astype(np.int64)  # each row's states and its token
        self.binding.bind_cpu_input("input_ids", tokens[:, None].numpy().astype(np.int64))
        self.binding.bind_cpu_input("attention_mask", mask)
        self.session.run_with_iobinding(self.binding)
        self.lengths = [length + 1 for length in self.lengths]
        return self.logits

    def select(self, keep: torch.Tensor) -> None:
        """Only these rows go on, moved up in place (a copy of the buffers would hold the batch's states twice)."""
        keep = keep.tolist()
        for row, k in enumerate(keep):  # ascending, k >= row: a row is read before it is overwritten
            if k != row:
                self.keys[:, row], self.values[:, row] = self.keys[:, k], self.values[:, k]
        self.start(self.keys[:, : len(keep)], self.values[:, : len(keep)], [self.lengths[k] for k in keep],
                   self.logits.shape[-1])

    def states(self, row: int, length: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """A row's first `length` states, per layer [1, heads, length, dim]: for the prefix tree."""
        return ([layer[row : row + 1, :, :length].clone() for layer in self.keys],
                [layer[row : row + 1, :, :length].clone() for layer in self.values])


def graph_for(model: torch.nn.Module, tokenizer, weights_key: str) -> Path:
    return build_once(graph_dir(weights_key), lambda folder: build_graph(model, tokenizer, folder))
