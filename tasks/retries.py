"""Prefect-level retries for tasks that call a model endpoint.

The openai client already retries 429/5xx/timeouts for about half a minute and then raises an
`EndpointError`; a task that hit one waits longer (10 s, then 60 s) and runs again, so a rate-limit
storm or a restarting vLLM server delays a run instead of failing it. Any other error (a bug, a bad
setting, a missing model) fails at once: running it again would fail the same way.
"""

from __future__ import annotations

from core.errors import EndpointError

RETRY_DELAYS_S = [10, 60]


def endpoint_failed(task, task_run, state) -> bool:
    return isinstance(state.result(raise_on_failure=False), EndpointError)


ENDPOINT_RETRIES = dict(retries=len(RETRY_DELAYS_S), retry_delay_seconds=RETRY_DELAYS_S, retry_condition_fn=endpoint_failed)
