"""OpenAI-compatible chat endpoints (OpenAI, vLLM, Ollama, llama.cpp) with our own retries.

The client's built-in retries are off: one loop here retries 408/409/429/5xx, timeouts and
connection errors with capped, jittered exponential backoff, and turns everything else into
an `EndpointError` that names the URL and status but never the API key.

Token usage: a response bills its prompt once and its completion tokens for all choices
together, so the first generation of each response carries the prompt tokens (others 0)
and the completion tokens are split evenly (remainder on the first). Summing over
generations gives exactly what the server billed.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
from openai import OpenAI, omit
from openai.types.chat import ChatCompletion

from core.config import ModelConfig, SamplingConfig
from core.errors import EndpointError
from core.types import Message
from models.specs import model_fingerprint, parse_spec
from core.types import FunctionCall, Generation
from models.base import ChatModel

RETRY_BASE_S = 1.0  # first backoff delay; doubles per retry
RETRY_CAP_S = 30.0  # no single wait is longer than this
CHECK_TIMEOUT_S = 5.0  # preflight reachability check
PLACEHOLDER_KEY = "EMPTY"  # local servers (vLLM, Ollama) accept any key


def make_client(cfg: ModelConfig, timeout: float | None = None) -> OpenAI:
    """A client with the library's retries off (ours are in `OpenAIChatModel`)."""
    key = os.environ.get(cfg.api_key_env)
    if not key:
        if cfg.base_url is None:
            raise EndpointError(
                f"set the {cfg.api_key_env} environment variable to your API key "
                "(or set base_url to a local OpenAI-compatible server)"
            )
        key = PLACEHOLDER_KEY
    return OpenAI(api_key=key, base_url=cfg.base_url, timeout=timeout or cfg.timeout_s, max_retries=0)


def check_endpoint(cfg: ModelConfig) -> None:
    """One quick GET /models: fails in seconds on a wrong URL, a rejected key or a model the server lacks.

    Other error statuses pass: the server answered, and some servers have no /models.
    """
    client = make_client(cfg, timeout=min(cfg.timeout_s, CHECK_TIMEOUT_S))
    url = str(client.base_url).rstrip("/")
    _, model = parse_spec(cfg.spec)
    try:
        served = [m.id for m in client.models.list()]
        if served and model not in served:
            listed = ", ".join(sorted(served)[:20])
            raise EndpointError(f"{url} does not serve model {model!r} (it serves: {listed})")
    except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
        raise EndpointError(f"{url} rejected the API key in ${cfg.api_key_env} (HTTP {e.status_code})") from None
    except openai.APIStatusError:
        pass
    except openai.APIConnectionError as e:
        raise EndpointError(f"cannot reach {url} ({redact(_reason(e), client.api_key)})") from None
    finally:
        client.close()


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Our messages in chat-completions form.

    A tool result without a `tool_call_id` (ReAct agents write calls and results as text)
    goes as a `user` message; structured tool calls are sent only when they all carry ids,
    since the API rejects calls whose results cannot be matched to them.
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            if m.tool_call_id is None:
                out.append({"role": "user", "content": m.content})
            else:
                out.append({"role": "tool", "content": m.content, "tool_call_id": m.tool_call_id})
        elif m.role == "assistant" and m.tool_calls and all(c.id for c in m.tool_calls):
            calls = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in m.tool_calls
            ]
            out.append({"role": "assistant", "content": m.content or None, "tool_calls": calls})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


class OpenAIChatModel(ChatModel):
    """`openai:<model>` on cfg.base_url; the prompts of a call go out cfg.max_concurrency at a time."""

    def __init__(self, cfg: ModelConfig, retry_base_s: float = RETRY_BASE_S, retry_cap_s: float = RETRY_CAP_S):
        _, self.model = parse_spec(cfg.spec)
        self.cfg = cfg
        self.spec = cfg.spec
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self.client = make_client(cfg)
        self.url = str(self.client.base_url).rstrip("/")
        self.pool = ThreadPoolExecutor(cfg.max_concurrency, thread_name_prefix="openai")

    def generate(
        self, prompts: Sequence[Sequence[Message]], sampling: SamplingConfig, n: int = 1,
        tools: Sequence[dict[str, Any]] | None = None,
        grammar: str | None = None,  # never passed: the rollout refuses constrained=true for an API agent
    ) -> list[list[Generation]]:
        futures = [self.pool.submit(self._complete, p, sampling, n, tools) for p in prompts]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def _complete(self, prompt: Sequence[Message], sampling: SamplingConfig, n: int,
                  tools: Sequence[dict[str, Any]] | None = None) -> list[Generation]:
        """n choices for one prompt; servers that return fewer (Ollama ignores n) are asked again."""
        messages = to_openai_messages(prompt)
        gens: list[Generation] = []
        while len(gens) < n:
            # A top-up request with the same seed would repeat the same sample: shift it.
            seed = omit if sampling.seed is None else sampling.seed + len(gens)
            response = self._request(
                model=self.model,
                messages=messages,
                n=n - len(gens),
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                seed=seed,
                tools=list(tools) if tools else omit,
            )
            if not response.choices:
                raise EndpointError(f"{self.url} returned no choices for model {self.model!r}")
            gens += _generations(response)
        return gens[:n]

    def _request(self, **params: Any) -> ChatCompletion:
        """chat.completions.create with our retry loop; every failure ends as an EndpointError."""
        retries = self.cfg.max_retries
        for attempt in range(retries + 1):
            try:
                return self.client.chat.completions.create(**params)
            except openai.APIStatusError as e:
                detail = self._redact(_detail(e))
                if not _retryable(e.status_code):
                    raise EndpointError(
                        f"{self.url} rejected the request for model {self.model!r}: HTTP {e.status_code}: {detail}"
                    ) from None
                failure, wait = f"{self.url} answered HTTP {e.status_code}: {detail}", _retry_after(e)
            except openai.APIConnectionError as e:
                failure, wait = f"cannot reach {self.url} ({self._redact(_reason(e))})", 0.0
            if attempt < retries:
                time.sleep(self._delay(attempt, wait))
        raise EndpointError(f"{failure} (gave up after {retries} retries)")

    def _delay(self, attempt: int, retry_after: float) -> float:
        """Exponential backoff with jitter (so parallel workers do not retry in lockstep), capped."""
        backoff = min(self.retry_cap_s, self.retry_base_s * 2**attempt) * random.uniform(0.5, 1.0)
        return max(backoff, min(retry_after, self.retry_cap_s))

    def _redact(self, text: str) -> str:
        return redact(text, self.client.api_key)

    def fingerprint(self) -> str:
        return model_fingerprint(self.cfg)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


def _generations(response: ChatCompletion) -> list[Generation]:
    """Split one response into Generations; usage is attributed as the module docstring says."""
    choices = sorted(response.choices, key=lambda c: c.index)
    usage = response.usage
    prompt = usage.prompt_tokens if usage else 0
    completion = usage.completion_tokens if usage else 0
    share, rest = divmod(completion, len(choices))
    return [
        Generation(
            text=c.message.content or "",
            prompt_tokens=prompt if i == 0 else 0,
            completion_tokens=share + (rest if i == 0 else 0),
            tool_calls=tuple(FunctionCall(call.id, call.function.name, call.function.arguments)
                             for call in c.message.tool_calls or () if call.type == "function"),
        )
        for i, c in enumerate(choices)
    ]


def _retryable(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _retry_after(e: openai.APIStatusError) -> float:
    """Seconds the server asked us to wait (Retry-After), 0 if it did not say."""
    try:
        return float(e.response.headers.get("retry-after", 0))
    except ValueError:  # an HTTP date: fall back to our own backoff
        return 0.0


def redact(text: str, key: str | None) -> str:
    """The text with the API key blanked out, for messages that may reach logs."""
    return text.replace(key, "***") if key and key != PLACEHOLDER_KEY else text


def _detail(e: openai.APIStatusError) -> str:
    body = e.body
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or e.message)[:300]


def _reason(e: openai.APIConnectionError) -> str:
    if isinstance(e, openai.APITimeoutError):
        return "timed out"
    return str(e.__cause__ or e)
