"""The hf backend (and `embedded`) on a tiny random Llama built locally: no hub, no mocks.

The model runs in float32 on CPU; at that precision the same prompt decodes to the same
greedy text alone and inside a left-padded batch (positions come from the attention mask).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from bitsandbytes.nn import Linear4bit
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from core.config import ModelConfig, SamplingConfig
from core.errors import BadFileError, ModelSpecError
from core.types import Message
from models.loading import check_model, load_model
from models.specs import model_fingerprint, parse_spec
from models.embedded import build_random_model

GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=12)
PROMPTS = [
    [Message(role="user", content="hi")],
    [
        Message(role="system", content="You are a booking agent for restaurants, hotels and trains."),
        Message(role="user", content="I need a cheap hotel in the north with free parking, for three nights."),
    ],
    [
        Message(role="user", content="a train to london"),
        Message(role="assistant", content="when?"),
        Message(role="tool", content="[]"),
    ],
]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny matmuls gain nothing from 2 threads, and on a busy 2-core machine OpenMP threads
    spinning against other processes made these tests 10-50x slower (seconds per token)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model(tiny):
    m = load_model(ModelConfig(spec=f"hf:{tiny}", batch_size=2))
    yield m
    m.close()


def make_adapter(model_dir: Path, out: Path, seed: int) -> Path:
    """A LoRA adapter whose B matrices are perturbed (fresh LoRA is a no-op: B starts at zero)."""
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    peft_model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    torch.manual_seed(seed)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    peft_model.save_pretrained(out)
    return out


def texts(gens: list[list]) -> list[list[str]]:
    return [[g.text for g in per_prompt] for per_prompt in gens]


def test_batched_sampling_returns_n_per_prompt_with_token_counts(model, tiny):
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=8, seed=0)
    out = model.generate(PROMPTS, sampling, n=2)  # batch_size=2: two batches, the first left-padded

    assert [len(gens) for gens in out] == [2, 2, 2]
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    for prompt, gens in zip(PROMPTS, out):
        chat = [{"role": m.role, "content": m.content} for m in prompt]
        unpadded = len(tokenizer.apply_chat_template(chat, add_generation_prompt=True)["input_ids"])
        for g in gens:
            assert g.prompt_tokens == unpadded
            assert 1 <= g.completion_tokens <= sampling.max_new_tokens
    assert out[1][0].text != out[1][1].text  # n samples, not n copies


def test_greedy_is_deterministic_and_batch_invariant(model):
    batched = model.generate(PROMPTS, GREEDY, n=2)
    alone = [model.generate([p], GREEDY)[0][0].text for p in PROMPTS]

    assert all(g.text for gens in batched for g in gens)  # a non-trivial check: the text is not empty
    assert texts(batched) == [[t, t] for t in alone]
    assert texts(model.generate(PROMPTS, GREEDY)) == [[t] for t in alone]


def test_greedy_decoding_matches_transformers_generate(tiny):
    """The backend's own prefill + batched decode loop gives what `model.generate` gives, prompt by prompt."""
    ours = load_model(ModelConfig(spec=f"hf:{tiny}", batch_size=8))
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    reference = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    twice = PROMPTS + PROMPTS[:1]  # a repeated prompt is prefilled once and decoded twice
    for prompt, (gen,) in zip(twice, ours.generate(twice, GREEDY)):
        enc = tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in prompt],
                                            add_generation_prompt=True, return_tensors="pt")
        out = reference.generate(**enc, do_sample=False, max_new_tokens=GREEDY.max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id)
        assert gen.text == tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    ours.close()


def test_a_prompt_extending_an_earlier_one_reuses_its_states_and_decodes_the_same(tiny):
    cached = load_model(ModelConfig(spec=f"hf:{tiny}"))
    fresh = load_model(ModelConfig(spec=f"hf:{tiny}", prefix_cache_mb=0))
    first = PROMPTS[1]
    longer = [*first, Message(role="assistant", content="Which night?"), Message(role="user", content="Friday, two people.")]
    cached.generate([first], GREEDY)
    assert cached.prefixes.reused_tokens == 0
    assert texts(cached.generate([longer], GREEDY)) == texts(fresh.generate([longer], GREEDY))
    assert cached.prefixes.reused_tokens > 20 and fresh.prefixes.reused_tokens == 0 and fresh.prefixes.bytes == 0
    cached.close()
    fresh.close()


def test_conversations_read_through_the_prefix_tree_decode_what_reading_every_prompt_afresh_decodes(tiny):
    """The shared system prompt is read once, and each conversation's next turn reads only what is new since its
    last prompt; greedy tokens are those of a model that reads every prompt from scratch."""
    cached = load_model(ModelConfig(spec=f"hf:{tiny}"))
    fresh = load_model(ModelConfig(spec=f"hf:{tiny}", prefix_cache_mb=0))
    system = Message(role="system", content="You are a booking agent for restaurants, hotels and trains. " * 4)
    chats = [[system, Message(role="user", content=f"I need a table for {k} people on friday.")] for k in range(2, 6)]
    system_tokens = len(cached._ids([{"role": "system", "content": system.content}])) - 3  # less the generation prompt
    last: list[int] = []
    for turn in range(3):
        before = cached.prefixes.reused_tokens
        ours = cached.generate(chats, GREEDY)
        assert texts(ours) == texts(fresh.generate(chats, GREEDY))
        reused = cached.prefixes.reused_tokens - before
        if turn == 0:
            assert reused >= (len(chats) - 1) * system_tokens  # every conversation after the first
        else:
            assert reused >= sum(length - 1 for length in last)  # the whole previous prompt, at least
        last = [gen.prompt_tokens for (gen,) in ours]
        for chat, (gen,) in zip(chats, ours):
            chat += [Message(role="assistant", content=gen.text), Message(role="user", content=f"and {turn} more")]
    assert fresh.prefixes.reused_tokens == 0
    cached.close()
    fresh.close()


@pytest.mark.parametrize("with_adapter", [False, True])
def test_decoding_in_onnxruntime_gives_torchs_tokens_and_feeds_the_prefix_tree(tiny, tmp_path, with_adapter):
    """decode_engine=onnxruntime: torch reads the prompts (through the prefix tree), ONNX Runtime decodes from those
    states; three turns of four conversations (an adapter merged into the graph, or not) give the greedy tokens of
    torch reading every prompt afresh, and each next turn reuses the states the ONNX decode wrote."""
    adapter = str(make_adapter(tiny, tmp_path / "adapter", seed=3)) if with_adapter else None
    ours = load_model(ModelConfig(spec=f"hf:{tiny}", adapter=adapter, decode_engine="onnxruntime", batch_size=4))
    fresh = load_model(ModelConfig(spec=f"hf:{tiny}", adapter=adapter, prefix_cache_mb=0))
    chats = [[Message(role="user", content=f"I need a table for {k} people on friday.")] for k in range(2, 6)]
    for turn in range(3):
        before = ours.prefixes.reused_tokens
        said = ours.generate(chats, GREEDY)
        assert texts(said) == texts(fresh.generate(chats, GREEDY)), turn
        if turn:
            assert ours.prefixes.reused_tokens - before >= sum(len(chat) for chat in chats)  # the last turn's states
        for chat, (gen,) in zip(chats, said):
            chat += [Message(role="assistant", content=gen.text), Message(role="user", content=f"and {turn} more")]
    assert ours._ort_decoder is not None  # the graph decoded
    ours.close()
    fresh.close()


def test_a_one_token_prompt_decodes_as_transformers_does(model):
    """A prompt of a single token has no states before it: the batch starts from empty ones."""
    token = model.tokenizer.bos_token_id or 1
    (gen,) = model._decode([[token]], [0], GREEDY)
    expected = model.model.generate(torch.tensor([[token]]), max_new_tokens=GREEDY.max_new_tokens, do_sample=False,
                                    pad_token_id=model.tokenizer.pad_token_id)[0, 1:].tolist()
    assert gen.text == model.tokenizer.decode(expected[: gen.completion_tokens], skip_special_tokens=True)
    assert gen.completion_tokens > 0


def test_in_onnxruntime_rows_that_end_early_leave_the_batch_and_the_others_decode_on(tiny):
    """Rows ending at different steps leave the decode batch (the others move up in its buffers): every row still
    gets torch's greedy tokens. A token the tiny model emits at different steps is made an end of sequence."""
    ours = load_model(ModelConfig(spec=f"hf:{tiny}", decode_engine="onnxruntime", batch_size=8))
    fresh = load_model(ModelConfig(spec=f"hf:{tiny}", prefix_cache_mb=0))
    chats = [[Message(role="user", content=f"Book {k} seats to the coast on day {k}, please.")] for k in range(8)]
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=24)
    fresh.keep_ids = True
    answers = [gen.completion_ids for (gen,) in fresh.generate(chats, sampling)]

    def ends(token):  # the step at which each row would end
        return [ids.index(token) if token in ids else len(ids) for ids in answers]

    cap = sampling.max_new_tokens
    stop = max({t for ids in answers for t in ids}, key=lambda t: (len(set(ends(t))), -abs(ends(t).count(cap) - 3)))
    assert len(set(ends(stop))) >= 3 and 0 < ends(stop).count(cap) < 8  # rows leave at several steps, some decode on
    ours.eos_ids = fresh.eos_ids = fresh.eos_ids | {stop}
    fresh.keep_ids = False
    assert texts(ours.generate(chats, sampling)) == texts(fresh.generate(chats, sampling))
    assert ours._ort_decoder is not None
    ours.close()
    fresh.close()


def test_a_conversation_longer_than_the_context_drops_old_turns_and_its_next_turns_reuse_the_rest(tmp_path):
    """Cut in half-context steps: the system prompt and latest turns stay, and the next turns extend the cut prompt."""
    small = load_model(ModelConfig(spec=f"hf:{build_random_model(tmp_path, max_position_embeddings=256)}"))
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=16)
    room = 256 - sampling.max_new_tokens
    system = Message(role="system", content="You are a booking agent.")
    turns = [Message(role="user" if k % 2 == 0 else "assistant", content=f"turn {k}: a table for {k} people")
             for k in range(40)]
    (gen,), = small.generate([[system, *turns]], sampling)
    assert room // 3 < gen.prompt_tokens <= room
    kept = small.tokenizer.decode(small._fit([{"role": m.role, "content": m.content} for m in [system, *turns]], room))
    assert kept.startswith("<|system|>you are a booking agent.")  # (the embedded tokenizer lowercases)
    assert "turn 39:" in kept and "turn 0:" not in kept

    (longer,), = small.generate([[system, *turns, Message(role="assistant", content="ok"),
                                  Message(role="user", content="yes")]], sampling)
    assert small.prefixes.reused_tokens >= gen.prompt_tokens - 1 and longer.prompt_tokens > gen.prompt_tokens

    long_system = Message(role="system", content="You are a booking agent. " * 60)  # alone longer than the room
    for prompt in ([long_system], [long_system, turns[0]]):
        (gen,), = small.generate([prompt], sampling)
        assert gen.prompt_tokens > room and gen.completion_tokens > 0
    small.close()


def test_nucleus_sampling_with_a_tiny_top_p_is_greedy(model):
    nucleus = SamplingConfig(temperature=1.0, top_p=1e-6, max_new_tokens=12, seed=3)
    assert texts(model.generate(PROMPTS, nucleus)) == texts(model.generate(PROMPTS, GREEDY))


def test_seeded_sampling_is_reproducible(model):
    def sample(seed: int) -> list[list[str]]:
        sampling = SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=8, seed=seed)
        return texts(model.generate(PROMPTS, sampling, n=2))

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_4bit_load_quantizes_linear_layers_and_generates(tiny):
    m = load_model(ModelConfig(spec=f"hf:{tiny}", load_in_4bit=True))
    decoder = m.model.model.layers
    linears = [mod for mod in decoder.modules() if isinstance(mod, torch.nn.Linear)]

    assert linears and all(isinstance(mod, Linear4bit) for mod in linears)
    out = m.generate(PROMPTS, GREEDY, n=1)
    assert all(gens[0].text and gens[0].completion_tokens > 0 for gens in out)
    m.close()


def test_lora_adapter_changes_output_and_fingerprint(model, tiny, tmp_path):
    adapter = make_adapter(tiny, tmp_path / "adapter", seed=0)
    cfg = ModelConfig(spec=f"hf:{tiny}", adapter=str(adapter))
    tuned = load_model(cfg)

    assert texts(tuned.generate(PROMPTS, GREEDY)) != texts(model.generate(PROMPTS, GREEDY))
    assert tuned.fingerprint() != model.fingerprint()
    before = model_fingerprint(cfg)
    make_adapter(tiny, adapter, seed=1)  # same path, new weights
    assert model_fingerprint(cfg) != before
    tuned.close()


def test_fingerprint_is_stable_and_tracks_weights(tiny, tmp_path):
    copy = Path(shutil.copytree(tiny, tmp_path / "copy"))
    cfg = ModelConfig(spec=f"hf:{copy}")
    first = model_fingerprint(cfg)
    assert model_fingerprint(cfg) == first
    assert model_fingerprint(cfg.model_copy(update={"load_in_4bit": True})) != first

    weights = AutoModelForCausalLM.from_pretrained(copy, dtype=torch.float32)
    with torch.no_grad():
        weights.lm_head.weight[0, 0] += 1.0
    weights.save_pretrained(copy)
    assert model_fingerprint(cfg) != first


def test_fingerprint_of_big_files_uses_size_and_mtime_not_bytes(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    big = tmp_path / "model.safetensors"
    with big.open("wb") as f:
        f.truncate(65 * 2**20)  # sparse: 65 MB on paper, nothing on disk
    cfg = ModelConfig(spec=f"hf:{tmp_path}")
    first = model_fingerprint(cfg)

    stat = big.stat()
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert model_fingerprint(cfg) != first


def test_bad_paths_and_specs_are_model_spec_errors(tmp_path):
    missing = tmp_path / "no" / "such" / "model"
    for cfg in (ModelConfig(spec=f"hf:{missing}"), ModelConfig(spec=f"hf:{tmp_path}")):  # missing; not a model dir
        with pytest.raises(ModelSpecError, match=str(tmp_path)):
            check_model(cfg)
        with pytest.raises(ModelSpecError, match=str(tmp_path)):
            load_model(cfg)
    with pytest.raises(ModelSpecError, match="adapter"):
        check_model(ModelConfig(spec="hf:org/name", adapter=str(missing)))
    check_model(ModelConfig(spec="hf:org/name"))  # a plausible hub id passes the offline preflight


@pytest.mark.parametrize("spec", ["gpt:4", "hf:", "openai:", "embedded:x", "HF:org/name", ""])
def test_unknown_specs_list_the_valid_forms(spec):
    with pytest.raises(ModelSpecError, match="embedded.*hf:.*openai:"):
        parse_spec(spec)
    with pytest.raises(ModelSpecError):
        load_model(ModelConfig(spec=spec))


def test_valid_specs_parse():
    assert parse_spec("embedded") == ("embedded", "")
    assert parse_spec("hf:/models/x:v2") == ("hf", "/models/x:v2")
    assert parse_spec("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")


@pytest.mark.parametrize("damage", ["truncated weights", "broken config", "no weights"])
def test_a_damaged_adapter_is_one_error_naming_its_folder(tiny, tmp_path, damage):
    adapter = make_adapter(tiny, tmp_path / "adapter", seed=0)
    weights, config = adapter / "adapter_model.safetensors", adapter / "adapter_config.json"
    if damage == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "broken config":
        config.write_text(config.read_text()[:40])
    else:
        weights.unlink()
    with pytest.raises(BadFileError, match=re.escape(f"cannot load LoRA adapter {adapter}")):
        load_model(ModelConfig(spec=f"hf:{tiny}", adapter=str(adapter)))
