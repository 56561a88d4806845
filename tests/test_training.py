"""QLoRA SFT, DPO and KTO with trl on a tiny 4-bit model on the CPU: the loss falls, the adapter
loads back through `hf:` in 4-bit and changes what the model says, an interrupted run resumes
to the same adapter."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from core.config import ModelConfig, PreferenceConfig, SamplingConfig, SFTConfig
from core.errors import ConfigError
from core.records import training_dataset
from core.types import Message
from models.loading import check_model, load_model
from models.embedded import build_random_model
from models.hf_backend import is_full_model
from models.training import ADAPTER, CHECKPOINTS, REPORT, last_checkpoint, train_preferences, train_sft, trained

SYSTEM = {"role": "system", "content": "You are a travel agent."}
FAST = dict(learning_rate=1e-2, batch_size=4, logging_steps=1, save_steps=3, max_length=128)


def _chat(i: int) -> list[dict]:
    return [SYSTEM, {"role": "user", "content": f"I need a hotel in the north for {i % 4 + 1} people."},
            {"role": "assistant", "content": "PLAN ask the day <COMMAND_END> SPEAK Which day do you arrive? <COMMAND_END>"}]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> str:
    return str(build_random_model(tmp_path_factory.mktemp("base")))


@pytest.fixture(scope="module")
def sft_data():
    return training_dataset("sft", [{"scenario_id": f"s{i}", "task_id": f"t{i}", "reward": 1.0, "messages": _chat(i)}
                                    for i in range(16)])


@pytest.fixture(scope="module")
def sft_run(base, sft_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft")
    return out, train_sft(base, sft_data, "data-1", SFTConfig(max_steps=12, **FAST), out)


def _reply(base: str, adapter: Path | None, four_bit: bool = True) -> str:
    model = load_model(ModelConfig(spec=f"hf:{base}", load_in_4bit=four_bit, adapter=str(adapter) if adapter else None))
    try:
        prompt = [Message(role="system", content=SYSTEM["content"]), Message(role="user", content="I need a hotel.")]
        return model.generate([prompt], SamplingConfig(temperature=0.0, max_new_tokens=12))[0][0].text
    finally:
        model.close()


def test_sft_loss_falls_and_the_adapter_changes_what_the_4bit_model_says(base, sft_run):
    out, report = sft_run
    losses = [loss for _, loss in report.curve]
    assert report.steps == 12 and len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5
    assert (out / ADAPTER / "adapter_config.json").is_file()
    saved = trained(out)
    assert saved.data_fingerprint == "data-1" and saved.config["lora_r"] == 8 and saved.curve == report.curve
    assert _reply(base, out / ADAPTER) != _reply(base, None)


def _pairs():
    return training_dataset("dpo", [{"scenario_id": f"s{i}", "task_id": f"t{i}", "prompt": _chat(i)[:2],
                                     "chosen": [{"role": "assistant", "content": "SPEAK Which day? <COMMAND_END>"}],
                                     "rejected": [{"role": "assistant", "content": "APICALL {} <COMMAND_END>"}]}
                                    for i in range(16)])


def test_dpo_continues_the_sft_adapter_and_prefers_the_chosen_turn(base, sft_run, tmp_path):
    sft_out, _ = sft_run
    report = train_preferences(base, sft_out / ADAPTER, _pairs(), "pairs-1", PreferenceConfig(max_steps=8, **FAST), tmp_path)
    losses = [loss for _, loss in report.curve]
    assert losses[0] == pytest.approx(0.6931, abs=0.01)  # the policy starts as its reference: the SFT adapter
    assert min(losses[-3:]) < 0.5
    assert _reply(base, tmp_path / ADAPTER) != _reply(base, sft_out / ADAPTER)


def test_dpo_with_an_sft_weight_also_learns_the_chosen_turn(base, sft_run, tmp_path):
    cfg = PreferenceConfig(max_steps=6, sft_weight=1.0, **FAST)
    report = train_preferences(base, sft_run[0] / ADAPTER, _pairs(), "pairs-1", cfg, tmp_path)
    losses = [loss for _, loss in report.curve]
    assert losses[0] > 0.6931 + 0.5  # the preference loss starts at log 2, plus the chosen turn's NLL
    assert losses[-1] < losses[0] - 0.5


def test_kto_trains_on_the_same_data_as_labelled_rows(base, sft_run, tmp_path):
    rows = training_dataset("kto", [{"scenario_id": f"s{i}", "task_id": f"t{i}", "prompt": _chat(i)[:2], "label": i % 2 == 0,
                                     "completion": [{"role": "assistant", "content": f"SPEAK answer {i % 2} <COMMAND_END>"}]}
                                    for i in range(16)])
    report = train_preferences(base, sft_run[0] / ADAPTER, rows, "kto-1", PreferenceConfig(method="kto", max_steps=4, **FAST),
                               tmp_path)
    assert report.kind == "kto" and report.steps == 4 and (tmp_path / ADAPTER / "adapter_config.json").is_file()


def test_full_finetuning_trains_every_weight_and_dpo_continues_from_it(base, sft_data, tmp_path):
    report = train_sft(base, sft_data, "d", SFTConfig(max_steps=8, full_finetune=True, **{**FAST, "learning_rate": 1e-3}),
                       tmp_path / "sft")
    losses = [loss for _, loss in report.curve]
    assert losses[-1] < losses[0] - 0.5
    model = tmp_path / "sft" / ADAPTER
    assert is_full_model(model) and (model / "tokenizer.json").is_file()
    check_model(ModelConfig(spec=f"hf:{base}", adapter=str(model)))  # the preflight takes it wherever an adapter goes
    assert _reply(base, model, four_bit=False) != _reply(base, None, four_bit=False)
    cfg = PreferenceConfig(max_steps=4, full_finetune=True, **{**FAST, "learning_rate": 1e-4})
    dpo = train_preferences(base, model, _pairs(), "p", cfg, tmp_path / "dpo")
    assert dpo.curve[0][1] == pytest.approx(0.6931, abs=0.01)  # the reference is the fully fine-tuned SFT model
    assert is_full_model(tmp_path / "dpo" / ADAPTER)


def test_an_interrupted_run_resumes_to_the_same_adapter(base, sft_data, tmp_path):
    cfg = SFTConfig(max_steps=6, **FAST)
    train_sft(base, sft_data, "d", cfg, tmp_path / "whole")
    stopped = train_sft(base, sft_data, "d", cfg, tmp_path / "cut", stop_after=3)
    assert stopped.steps == 3 and not (tmp_path / "cut" / REPORT).exists() and last_checkpoint(tmp_path / "cut")
    resumed = train_sft(base, sft_data, "d", cfg, tmp_path / "cut")
    assert resumed.resumed_from_step == 3 and resumed.steps == 6
    whole = load_file(tmp_path / "whole" / ADAPTER / "adapter_model.safetensors")
    cut = load_file(tmp_path / "cut" / ADAPTER / "adapter_model.safetensors")
    assert whole.keys() == cut.keys()
    for name in whole:
        assert (whole[name] - cut[name]).abs().max() < 1e-5, name


def test_a_checkpoint_cut_short_by_a_kill_is_passed_over(tmp_path):
    for step, state in ((1, '{"global_step": 1}'), (2, '{"global_step": 2}'), (3, None), (4, '{"global_st')):
        folder = tmp_path / CHECKPOINTS / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"weights")
        if state:
            (folder / "trainer_state.json").write_text(state)  # the trainer's last write: absent or cut in 3 and 4
    assert last_checkpoint(tmp_path).name == "checkpoint-2"
    assert last_checkpoint(tmp_path / "nothing") is None


def test_rows_cut_before_their_first_agent_turn_are_a_clear_error(base, tmp_path):
    long = [{**SYSTEM, "content": SYSTEM["content"] + " Order record: " + "item " * 200}, *_chat(0)[1:]]
    data = training_dataset("sft", [{"scenario_id": "s", "task_id": "t", "reward": 1.0, "messages": long}] * 2)
    with pytest.raises(ConfigError, match="cut at max_length=64 tokens before its first agent turn"):
        train_sft(base, data, "cut", SFTConfig(**{**FAST, "max_length": 64}), tmp_path / "cut")


def test_known_harmless_notices_are_silenced_and_other_warnings_are_not(caplog, tmp_path):
    """bitsandbytes' missing hub kernel (CPUs with AVX512-BF16) and transformers' renamed gradient-checkpointing
    names would print at every run; each is dropped by its exact message, nothing else from those sources."""
    import models.hf_backend  # noqa: F401  (installs the filters)

    notices = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING):
        notices.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s.", "offline")
        notices.warning("a real problem")
    assert [r.getMessage() for r in caplog.records] == ["a real problem"]

    script = (f"from models.embedded import build_random_model; from models.training import _common; "
              f"from core.config import SFTConfig; from pathlib import Path; from trl import SFTConfig as Trl; "
              f"from transformers import AutoModelForCausalLM; "
              f"Trl(**_common(SFTConfig(), Path({str(tmp_path)!r}), 'cpu')); "
              f"AutoModelForCausalLM.from_pretrained(build_random_model(Path({str(tmp_path / 'm')!r}))).is_gradient_checkpointing")
    run = subprocess.run([sys.executable, "-W", "default", "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 0, run.stderr[-2000:]
    assert "gradient_checkpointing" not in run.stderr, run.stderr
