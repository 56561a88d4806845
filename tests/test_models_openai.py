"""The openai backend against a real local HTTP server speaking the chat-completions protocol."""

from __future__ import annotations

import socket
import time

import pytest
from chat_server import ChatServer

from core.config import ModelConfig, SamplingConfig
from core.errors import EndpointError, ModelSpecError
from core.types import Message, ToolCall
from models.loading import check_model, load_model
from models.openai_backend import OpenAIChatModel

KEY_ENV = "SELFTRAIN_TEST_API_KEY"
SECRET = "sk-test-SENTINEL-0123456789"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)


@pytest.fixture
def serve():
    servers: list[ChatServer] = []

    def start(**kwargs) -> ChatServer:
        servers.append(ChatServer(**kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def model_on(url: str, **cfg) -> OpenAIChatModel:
    """A model on `url` whose backoff waits are milliseconds, not seconds."""
    return OpenAIChatModel(
        ModelConfig(spec="openai:tiny", base_url=url, api_key_env=KEY_ENV, **cfg), retry_base_s=0.01, retry_cap_s=0.05
    )


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(text: str) -> list[Message]:
    return [Message(role="system", content="be brief"), Message(role="user", content=text)]


def test_generate_returns_n_per_prompt_in_order_with_usage(serve):
    server = serve()
    model = load_model(ModelConfig(spec="openai:tiny", base_url=server.url, api_key_env=KEY_ENV))
    sampling = SamplingConfig(temperature=0.7, top_p=0.9, max_new_tokens=32, seed=7)
    out = model.generate([ask("one"), ask("two words"), ask("three more words")], sampling, n=2)
    model.close()

    assert [[g.text for g in gens] for gens in out] == [
        ["reply 0 to one", "reply 1 to one"],
        ["reply 0 to two words", "reply 1 to two words"],
        ["reply 0 to three more words", "reply 1 to three more words"],
    ]
    # The prompt is billed once per response (on the first generation); completions are split.
    assert [[g.prompt_tokens for g in gens] for gens in out] == [[3, 0], [4, 0], [5, 0]]
    assert all(g.completion_tokens == 5 for gens in out for g in gens)
    sent = server.requests[0]
    assert (sent["model"], sent["n"], sent["temperature"], sent["top_p"], sent["max_tokens"], sent["seed"]) == (
        "tiny", 2, 0.7, 0.9, 32, 7,
    )


def test_server_returning_fewer_choices_is_asked_again_with_new_seeds(serve):
    server = serve(max_choices=1)  # like Ollama, which ignores n
    model = model_on(server.url)
    out = model.generate([ask("hi")], SamplingConfig(temperature=1.0, seed=3), n=3)

    assert len(out[0]) == 3
    assert [r["n"] for r in server.requests] == [3, 2, 1]
    assert [r["seed"] for r in server.requests] == [3, 4, 5]


def test_429_is_retried(serve):
    server = serve(statuses=[429])
    out = model_on(server.url).generate([ask("hi")], SamplingConfig())

    assert out[0][0].text == "reply 0 to hi"
    assert len(server.requests) == 2


def test_5xx_is_retried_until_success(serve):
    server = serve(statuses=[500, 503])
    out = model_on(server.url, max_retries=2).generate([ask("hi")], SamplingConfig())

    assert out[0][0].text == "reply 0 to hi"
    assert len(server.requests) == 3


def test_5xx_gives_up_after_max_retries(serve):
    server = serve(statuses=[500] * 10)
    with pytest.raises(EndpointError, match="HTTP 500.*after 2 retries"):
        model_on(server.url, max_retries=2).generate([ask("hi")], SamplingConfig())
    assert len(server.requests) == 3


def test_400_fails_at_once_without_leaking_the_key(serve):
    server = serve(statuses=[400])
    with pytest.raises(EndpointError) as err:
        model_on(server.url).generate([ask("hi")], SamplingConfig())

    assert "HTTP 400" in str(err.value) and server.url in str(err.value)
    assert "scripted 400" in str(err.value)  # the server's own explanation is kept...
    assert SECRET not in str(err.value)  # ...with the key it echoed redacted
    assert len(server.requests) == 1


def test_timeouts_are_retried_then_reported(serve):
    server = serve(delay=0.5)
    with pytest.raises(EndpointError, match="timed out"):
        model_on(server.url, timeout_s=0.1, max_retries=1).generate([ask("hi")], SamplingConfig())
    assert len(server.requests) == 2


def test_unreachable_url_fails_fast_in_check_and_generate():
    url = f"http://127.0.0.1:{free_port()}/v1"
    cfg = ModelConfig(spec="openai:tiny", base_url=url, api_key_env=KEY_ENV)

    start = time.monotonic()
    with pytest.raises(EndpointError, match="cannot reach") as err:
        check_model(cfg)
    assert url in str(err.value) and SECRET not in str(err.value)

    with pytest.raises(EndpointError, match="cannot reach") as err:
        model_on(url, max_retries=2).generate([ask("hi")], SamplingConfig())
    assert url in str(err.value) and SECRET not in str(err.value)
    assert time.monotonic() - start < 5


def test_check_model_passes_on_a_live_server(serve):
    server = serve()
    check_model(ModelConfig(spec="openai:tiny", base_url=server.url, api_key_env=KEY_ENV))


def test_missing_key_without_base_url_names_the_env_var(monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(EndpointError, match=KEY_ENV):
        load_model(ModelConfig(spec="openai:gpt-4o-mini", api_key_env=KEY_ENV))


def test_adapter_on_an_api_model_is_rejected(serve, tmp_path):
    with pytest.raises(ModelSpecError, match="adapter"):
        check_model(ModelConfig(spec="openai:tiny", base_url=serve().url, api_key_env=KEY_ENV, adapter=str(tmp_path)))


def test_concurrency_is_bounded(serve):
    server = serve(delay=0.15)
    model = model_on(server.url, max_concurrency=3)
    out = model.generate([ask(f"q{i}") for i in range(9)], SamplingConfig())

    assert [gens[0].text for gens in out] == [f"reply 0 to q{i}" for i in range(9)]
    assert 1 < server.max_in_flight <= 3


def test_tool_results_without_call_id_go_as_user_messages(serve):
    server = serve()
    call = ToolCall(name="search_hotel", arguments={"area": "north"}, id="call_1")
    prompt = [
        Message(role="user", content="find a hotel"),
        Message(role="assistant", content="APICALL search", tool_calls=(ToolCall(name="search_hotel"),)),
        Message(role="tool", content="[]"),
        Message(role="assistant", tool_calls=(call,)),
        Message(role="tool", content='[{"name": "acorn"}]', tool_call_id="call_1"),
    ]
    model_on(server.url).generate([prompt], SamplingConfig())

    sent = server.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "assistant", "tool"]
    assert "tool_calls" not in sent[1]  # a call without an id cannot be matched to a result: text only
    assert sent[2]["content"] == "[]"
    assert sent[3]["tool_calls"][0]["function"] == {"name": "search_hotel", "arguments": '{"area": "north"}'}
    assert sent[4]["tool_call_id"] == "call_1"


def test_preflight_names_a_model_the_server_does_not_serve(serve):
    with pytest.raises(EndpointError, match=r"does not serve model 'gpt-5-typo' \(it serves: tiny\)"):
        check_model(ModelConfig(spec="openai:gpt-5-typo", base_url=serve().url, api_key_env=KEY_ENV))
