"""Whatever a model writes reaches the tools as a result it can read: random agent generations (malformed JSON,
unknown tools, wrong types, huge or unicode arguments, `**` towers in calculate) go through both agent formats into
every domain's tool dispatch and its reward, with no exception escaping and no call stalling its worker."""

import faulthandler
import json
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.types import FunctionCall, Generation
from envs.registry import domain
from formats import function_calling, react
from roleplay.config import EvalConfig
from roleplay.rollout import agent_format, episode

EXAMPLES = 120  # per domain and format: 1,080 generations in all
DEADLINE_MS = 10_000  # an example (fork, call, reward) this slow stalls a worker: the fuzzing fails
STALL_S = 30  # one that never returns (a C loop holds the GIL): the process dumps its stack and exits, not hangs

json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)
towers = st.lists(st.sampled_from(["9", "99", "(9)", "0.5", "-9"]), min_size=2, max_size=6).map("**".join)
huge = st.sampled_from(["x" * 100_000, "9" * 5_000, "é🙂\u202e" * 2_000, "{" * 1_000])


DOMAINS, FORMATS = ("toolwoz", "retail", "airline"), ("react", "written", "native")


@pytest.fixture(scope="module")
def stderr_fd(pytestconfig) -> int:
    """The terminal's stderr as pytest's own faulthandler keeps it (fd 2 is captured, and lost when the process exits)."""
    from _pytest.faulthandler import fault_handler_stderr_fd_key

    return pytestconfig.stash.get(fault_handler_stderr_fd_key, 2)  # 2: pytest's faulthandler plugin is off


@pytest.fixture(scope="module")
def openings():
    """Per domain and format, an episode waiting for the agent and the tool names, built (and the domain's data
    loaded) before any example runs against the deadline."""
    return {(name, fmt_name): opening(name, fmt_name) for name in DOMAINS for fmt_name in FORMATS}


def opening(name: str, fmt_name: str):
    """An episode of the domain's first validation task, waiting for the agent: each example forks it."""
    bench = domain(name)
    native = fmt_name == "native"
    split = "val" if name == "toolwoz" else "test"
    cfg = EvalConfig(benchmark=name, split=split, agent_format="react" if fmt_name == "react" else "tools")
    fmt = agent_format(bench, cfg, native=native)
    start = episode(bench, bench.scenario(bench.task_ids(split)[0]), fmt, cfg)
    start.on_user(Generation(text="Hi, I need help with my booking.", prompt_tokens=0, completion_tokens=0))
    bench.oracle_reward(start.scenario.task_id)  # loads the data and the ground truth's expected state
    return start, [s["function"]["name"] if "function" in s else s["name"] for s in bench.tool_schemas()]


@st.composite
def calls(draw, tools: list[str]) -> tuple[str, object]:
    """A tool name (known or not) and arguments of any shape: the real argument names with values of any type."""
    if draw(st.integers(0, 3)) == 0:  # often enough to hit it: arithmetic a worker could spend hours on
        return "calculate", {"expression": draw(towers)}
    name = draw(st.sampled_from(tools) | st.text(max_size=12))
    keys = st.sampled_from(["expression", "order_id", "user_id", "item_ids", "name", "area", "day", "people", "id"])
    value = json_value | towers | huge
    arguments = draw(st.dictionaries(keys | st.text(max_size=8), value, max_size=4) | json_value | towers)
    return name, arguments


@st.composite
def generations(draw, fmt_name: str, tools: list[str]) -> Generation:
    name, arguments = draw(calls(tools))
    if fmt_name == "native":
        written = draw(st.just(json.dumps(arguments)) | st.text(max_size=30) | huge)
        return Generation(text="", prompt_tokens=0, completion_tokens=1,
                          tool_calls=(FunctionCall(id="call_0", name=name, arguments=written),))
    body = json.dumps({"name": name, "parameters" if fmt_name == "react" else "arguments": arguments})
    if draw(st.integers(0, 3)) == 0:
        body = body[: draw(st.integers(0, len(body)))]  # cut short
    call = (f"PLAN look it up {react.END} APICALL {body} {react.END}" if fmt_name == "react"
            else f"{function_calling.OPEN}{body}{function_calling.CLOSE}")
    if draw(st.integers(0, 3)) == 0:  # not a call: any text, words to the customer, or a huge reply
        return Generation(text=draw(st.text(max_size=60) | st.just("SPEAK " + draw(st.text(max_size=30))) | huge),
                          prompt_tokens=0, completion_tokens=1)
    return Generation(text=call, prompt_tokens=0, completion_tokens=1)


@pytest.mark.parametrize("fmt_name", FORMATS)
@pytest.mark.parametrize("name", DOMAINS)
@settings(max_examples=EXAMPLES, deadline=DEADLINE_MS, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_any_agent_output_becomes_a_result_the_agent_reads(openings, stderr_fd, name, fmt_name, data):
    start, tools = openings[name, fmt_name]
    ep = start.fork()
    gen = data.draw(generations(fmt_name, tools))
    faulthandler.dump_traceback_later(STALL_S, exit=True, file=stderr_fd)
    try:
        ep.on_agent(gen)
    finally:
        faulthandler.cancel_dump_traceback_later()
    last = ep.record[-1] if ep.record else None
    if last is not None and last.role == "tool":
        assert isinstance(last.content, str) and last.content
        assert ep.invalid_calls <= (last.content[:5].lower() == "error")  # only a refused call counts as invalid
    reward = ep.to_dialogue().outcome.reward
    assert 0.0 <= reward <= 1.0
