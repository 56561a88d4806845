"""The warm start (`smollm2-toolwoz`): a whole model fine-tuned on a token budget's draw of ToolWOZ's human
transcripts, in the agent format, loss on the agent's turns. A tiny random model stands in for SmolLM2 here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial

import torch
from transformers import AutoModelForCausalLM

from core.cache import build_once
from core.config import SFTConfig
from models.embedded import build_random_model
from models.training import train_warm_start
from models.warm_start import WARM_START, WarmStartConfig, draw_within_budget, transcript_rows, warm_start_dir


def test_rows_are_the_agent_view_and_the_draw_keeps_to_the_budget():
    rows = transcript_rows(WarmStartConfig(max_dialogues=5))
    assert len(rows) == 5
    roles = [m["role"] for m in rows[0]["messages"]]
    assert roles[0] == "system" and "assistant" in roles and "tool" not in roles  # results are shown as user turns
    lengths = [100, 300, 200, 50, 400]
    drawn = draw_within_budget(len(lengths), lengths.__getitem__, budget=500, seed=0)
    assert sum(drawn.values()) <= 500 and drawn == draw_within_budget(len(lengths), lengths.__getitem__, 500, 0)
    assert len(draw_within_budget(1, [900].__getitem__, budget=10, seed=0)) == 1  # never nothing


def test_a_warm_start_trains_every_weight_and_is_keyed_on_its_recipe(tmp_path):
    base = build_random_model(tmp_path / "base")
    cfg = WarmStartConfig(budget_tokens=2500, max_dialogues=20, sft=SFTConfig(
        full_finetune=True, load_in_4bit=False, learning_rate=2e-3, epochs=1, batch_size=2, max_length=512, logging_steps=1))
    out = tmp_path / "warm"
    out.mkdir()
    train_warm_start(cfg, base, out)

    report = json.loads((out / WARM_START).read_text())
    assert 2000 < report["tokens"] <= 2500 and report["steps"] == -(-report["dialogues"] // 2)
    assert report["losses"][-1] < report["losses"][0]
    warm, cold = AutoModelForCausalLM.from_pretrained(out), AutoModelForCausalLM.from_pretrained(base)
    assert not torch.equal(warm.model.layers[0].mlp.up_proj.weight, cold.model.layers[0].mlp.up_proj.weight)
    assert (out / "tokenizer.json").is_file() and not (out / "run").exists()

    assert warm_start_dir(base, "tiny", cfg) == warm_start_dir(base, "tiny", cfg.model_copy())
    assert warm_start_dir(base, "tiny", cfg) != warm_start_dir(base, "tiny", cfg.model_copy(update={"budget_tokens": 3000}))


KILLED_BUILD = """
import sys
from functools import partial
from pathlib import Path
from core.cache import build_once
from models.training import train_warm_start
from models.warm_start import WarmStartConfig
cfg = WarmStartConfig.model_validate_json(sys.argv[1])
build_once(Path(sys.argv[3]), partial(train_warm_start, cfg, Path(sys.argv[2])), resumable=True)
"""


def test_a_killed_warm_start_goes_on_from_its_last_checkpoint_and_ends_as_an_uninterrupted_one(tmp_path):
    base = build_random_model(tmp_path / "base")
    cfg = WarmStartConfig(budget_tokens=2500, max_dialogues=20, sft=SFTConfig(
        full_finetune=True, load_in_4bit=False, learning_rate=2e-3, epochs=1, batch_size=1, max_length=512,
        logging_steps=1, save_steps=2))
    whole = build_once(tmp_path / "whole", partial(train_warm_start, cfg, base))

    final = tmp_path / "resumed"
    build = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, cfg.model_dump_json(), str(base), str(final)],
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    checkpoints = tmp_path / ".resumed.partial" / "run" / "checkpoints"
    deadline = time.time() + 300
    while not any(checkpoints.glob("checkpoint-*/trainer_state.json")) and build.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    build.send_signal(signal.SIGKILL)
    assert build.wait() == -signal.SIGKILL and not final.exists()  # killed mid-build: nothing under the real name

    build_once(final, partial(train_warm_start, cfg, base), resumable=True)
    report = json.loads((final / WARM_START).read_text())
    assert report["resumed_from_step"] >= 2 and report["steps"] == json.loads((whole / WARM_START).read_text())["steps"]
    resumed, uninterrupted = AutoModelForCausalLM.from_pretrained(final), AutoModelForCausalLM.from_pretrained(whole)
    for (name, a), b in zip(resumed.named_parameters(), uninterrupted.parameters()):
        assert torch.allclose(a, b, atol=1e-5), name
    assert not (tmp_path / ".resumed.partial").exists()
