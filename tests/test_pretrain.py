"""Training the embedded model: windows the model really sees, a short run that learns, a loadable result."""

import pytest
import torch

from core.config import ModelConfig, SamplingConfig
from models.bootstrap_config import BootstrapConfig
from envs.toolwoz.transcripts import human_dialogues
from models.loading import load_model
from models.embedded import embedded_model_dir
from models.tokenizer import build_tokenizer, cased_words
from envs.registry import domain
from models.pretrain import IGNORE, _collate, _loss, build_model, agent_view, encode_windows, train
from formats.react import parse_action

TINY = BootstrapConfig(max_steps=40, max_dialogues=40, vocab_size=512, hidden=128, layers=2, heads=2,
                       intermediate=256, block_size=384, batch_size=8, lr=3e-3, warmup_steps=5)


@pytest.fixture(scope="module")
def corpus(toolwoz):
    return human_dialogues(toolwoz, "train", limit=TINY.max_dialogues)


@pytest.fixture(scope="module")
def views(corpus, toolwoz):
    return [agent_view(d, toolwoz.tool_schemas) for d in corpus]


@pytest.fixture(scope="module")
def tokenizer(views, toolwoz):  # as train_embedded builds it
    return build_tokenizer(TINY.block_size, texts=(m.content for v in views for m in v), vocab_size=TINY.vocab_size,
                           keep_case=cased_words(toolwoz.tool_schemas))


def test_a_dialogue_teaches_the_agent_its_tools_calls_and_the_customers_words(corpus, views):
    agent = views[0]
    assert "search_restaurant(" in agent[0].content
    assert any(m.content.startswith("APICALL") for m in agent if m.role == "assistant")
    assert [m.content for m in agent if m.role == "user"][0] == next(m.content for m in corpus[0].messages if m.role == "user")
    assert agent[0].content == domain("toolwoz").react_system("compact")  # the very prompt the domain gives the agent


def test_a_call_copies_the_customers_words_token_for_token_and_decodes_to_the_same_json(tokenizer):
    call = ('APICALL {"name": "search_train", "parameters": {"day": "friday", "leaveAt": "10:15", '
            '"destination": "stansted airport"}} <COMMAND_END>')
    assert tokenizer.decode(tokenizer.encode(call)) == call  # markers and parameter names keep their case
    assert parse_action(tokenizer.decode(tokenizer.encode(call))).call.arguments["leaveAt"] == "10:15"
    said = tokenizer.encode("We leave after 10:15 on Friday for Stansted Airport")
    for value in ("friday", "10:15", "stansted airport"):
        spoken = tokenizer.encode(" " + value)
        assert _contains(tokenizer.encode(call), spoken) and _contains(said, spoken)
    assert len(tokenizer) <= TINY.vocab_size  # the kept words fit in the model's vocabulary


def _contains(ids, part):
    return any(ids[k : k + len(part)] == part for k in range(len(ids) - len(part) + 1))


def test_windows_match_the_chat_template_and_train_on_turns_not_prompt_or_tool_results(views, tokenizer):
    short = views[1][:3]  # system prompt, customer, agent
    (ids, labels), = encode_windows(tokenizer, short, block=10_000, carry=0)
    chat = [{"role": m.role, "content": m.content} for m in short]
    assert ids == tokenizer.apply_chat_template(chat, tokenize=True, return_dict=False)
    trained = tokenizer.decode([t for t, l in zip(ids, labels) if l != IGNORE])
    assert trained == tokenizer.decode(tokenizer.encode("".join(m.content + "<|end|>" for m in short[1:])))

    call = next(i for i, m in enumerate(views[0]) if m.content.startswith("APICALL"))
    call_and_result = views[0][call : call + 2]
    assert call_and_result[1].content.startswith("APIRETURN")
    (ids, labels), = encode_windows(tokenizer, [views[0][0], *call_and_result], block=10_000, carry=0)
    trained = tokenizer.decode([t for t, l in zip(ids, labels) if l != IGNORE])
    assert trained == tokenizer.decode(tokenizer.encode(call_and_result[0].content + "<|end|>"))

    agent = views[0]
    system = system_ids(tokenizer, agent)
    (whole_ids, whole_labels), = encode_windows(tokenizer, agent, block=10**6, carry=0)
    for carry in (0, 100):
        windows = encode_windows(tokenizer, agent, block=TINY.block_size, carry=carry)
        assert len(windows) > 1
        assert all(len(i) <= TINY.block_size and i[: len(system)] == system for i, _ in windows)
        trained = sum(sum(x != IGNORE for x in labels) for _, labels in windows)
        assert trained == sum(x != IGNORE for x in whole_labels)  # carried context is not trained twice
        carried = _carried(windows, whole_ids, len(system))
        assert max(carried) <= carry and (max(carried) > 10 or not carry)  # later windows keep recent turns as context


def _carried(windows, whole, system_length):
    """Per later window, how many of its first tokens the previous window already held (each is a slice of `whole`)."""
    rest, end, carried = whole[system_length:], 0, []
    for ids, _ in windows:
        body = ids[system_length:]
        start = next(s for s in range(max(0, end - len(body)), len(rest)) if rest[s : s + len(body)] == body)
        carried.append(end - start)
        end = start + len(body)
    return carried[1:]


def system_ids(tokenizer, view):
    return tokenizer.apply_chat_template([{"role": "system", "content": view[0].content}], tokenize=True, return_dict=False)


def test_too_small_a_window_is_a_config_error(corpus, toolwoz):
    from core.errors import ConfigError
    from models.pretrain import train_embedded

    with pytest.raises(ConfigError, match="block_size=128"):
        train_embedded(corpus[:2], toolwoz.tool_schemas, TINY.model_copy(update={"block_size": 128}), None)


def test_a_batch_computes_its_shared_system_prompt_once_with_the_librarys_loss_and_gradients(views, tokenizer):
    agent_windows = [w for v in views for w in encode_windows(tokenizer, v, TINY.block_size, TINY.carry_tokens)]
    system = tokenizer.apply_chat_template([{"role": "system", "content": views[0][0].content}], tokenize=True,
                                           return_dict=False)
    model = build_model(TINY, tokenizer)
    for batch, expect_shared in ((agent_windows[:4], len(system)), ([agent_windows[0]], 0)):
        ids, labels, mask, shared = _collate(batch, tokenizer.pad_token_id)
        assert shared == expect_shared
        reference = model(input_ids=ids, attention_mask=mask, labels=labels).loss  # the library's own loss
        reference.backward()
        expected = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        loss = _loss(model, ids, labels, mask, shared)
        loss.backward()
        assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
        assert all(torch.allclose(p.grad, g, atol=1e-6) for p, g in zip(model.parameters(), expected))
        model.zero_grad()


def test_a_short_run_lowers_the_loss(views, tokenizer):  # 40 steps: ~20 s here
    windows = [w for v in views for w in encode_windows(tokenizer, v, TINY.block_size, TINY.carry_tokens)]
    report = train(build_model(TINY, tokenizer), tokenizer, windows, TINY, log_every=5)
    assert report.steps == TINY.max_steps and len(report.losses) >= 3 and report.tokens > 0
    assert report.losses[-1] < report.losses[0] - 1.0


def test_trained_model_is_cached_and_loads_through_hf_also_in_4bit(toolwoz, monkeypatch):
    cfg = TINY.model_copy(update={"max_steps": 3, "max_dialogues": 8})
    path = embedded_model_dir(cfg)
    assert (path / "config.json").is_file() and (path / "bootstrap.json").is_file()
    monkeypatch.setattr("models.pretrain.build", lambda *a: pytest.fail("trained again instead of reusing"))
    assert embedded_model_dir(cfg) == path and len(list(path.parent.glob(".embedded-*"))) == 0
    for four_bit in (False, True):
        model = load_model(ModelConfig(spec=f"hf:{path}", load_in_4bit=four_bit))
        if four_bit:
            assert "Linear4bit" in {type(m).__name__ for m in model.model.modules()}
        (gen,), = model.generate([views_prompt(toolwoz)], SamplingConfig(max_new_tokens=8))
        assert gen.completion_tokens > 0
        model.close()


def views_prompt(toolwoz):
    from core.types import Message

    return [Message(role="system", content=domain("toolwoz").react_system("compact")),
            Message(role="user", content="I need a train to cambridge on monday.")]


def test_training_stops_when_the_token_budget_is_spent(views, tokenizer):
    windows = [w for v in views for w in encode_windows(tokenizer, v, TINY.block_size, TINY.carry_tokens)]
    cfg = TINY.model_copy(update={"budget_tokens": 5000, "max_steps": None})
    report = train(build_model(cfg, tokenizer), tokenizer, windows, cfg)
    assert report.stopped_by == "tokens"
    assert cfg.budget_tokens <= report.tokens < cfg.budget_tokens + cfg.batch_size * cfg.block_size
    capped = train(build_model(TINY, tokenizer), tokenizer, windows, TINY.model_copy(update={"max_seconds": 1e-9}))
    assert capped.stopped_by == "max_seconds" and capped.steps == 0
