"""tau-bench v1's reward, played through the environment evaluation uses, against upstream's two rules written
here on their own: every test task of both domains, as the ground truth, without its last write, with a wrong
write added, and with an output left unsaid."""

import pytest

from core.types import ToolCall
from envs.registry import domain
from envs.taubench.data import fresh_database, load_tasks
from envs.taubench.env import TOOLS, WRITES
from envs.taubench.tools import call

TRANSFER = "transfer_to_human_agents"
WRONG_WRITE = {  # a write the tools accept for any customer, and that no ground truth makes
    "retail": lambda user: ToolCall(name="modify_user_address", arguments={
        "user_id": user, "address1": "1 Wrong Way", "address2": "", "city": "Nowhere", "state": "NV", "country": "USA",
        "zip": "00000"}),
    "airline": lambda user: ToolCall(name="send_certificate", arguments={"user_id": user, "amount": 999}),
}


def _said(output: str, replies: list[str]) -> bool:
    return any(output.lower() in reply.lower().replace(",", "") for reply in replies)


def upstream_today(task, db, expected, replies) -> float:
    """sierra-research/tau-bench's calculate_reward since 718ffa1: zero unless the database equals the ground
    truth's replay, and zero unless every output was said."""
    return float(db == expected and all(_said(o, replies) for o in task.outputs))


def upstream_2024(task, db, expected, replies) -> float:
    """josh-train's vendored copy: a task with outputs is judged on them alone, any other on the database."""
    return float(all(_said(o, replies) for o in task.outputs)) if task.outputs else float(db == expected)


def _replayed(domain_name: str, calls: list[ToolCall]) -> dict:
    db = fresh_database(domain_name)
    for c in calls:
        call(TOOLS[domain_name], db, c.name, dict(c.arguments))
    return db


def plays(task):
    """What an agent may leave behind: (what it was, its calls, what it said)."""
    truth = [ToolCall(name=a.name, arguments=dict(a.kwargs)) for a in task.actions if a.name != TRANSFER]
    said = [" and ".join(task.outputs)] if task.outputs else []
    yield "ground truth", truth, said
    writes = [i for i, c in enumerate(truth) if c.name in WRITES[task.domain]]
    if writes:
        yield "minus its last write", truth[: writes[-1]] + truth[writes[-1] + 1 :], said
    yield "plus a wrong write", [*truth, WRONG_WRITE[task.domain](task.user_id)], said
    if task.outputs:
        yield "an output unsaid", truth, [" and ".join(task.outputs[1:])]


@pytest.mark.parametrize("domain_name", ["retail", "airline"])
def test_every_test_task_scores_as_upstream_scores_it_today_and_as_in_2024_on_request(domain_name):
    bench, scored = domain(domain_name), {"upstream": 0, "2024": 0}
    for task in load_tasks(domain_name, "test"):
        expected = _replayed(domain_name, [ToolCall(name=a.name, arguments=dict(a.kwargs))
                                           for a in task.actions if a.name != TRANSFER])
        for what, calls, replies in plays(task):
            env = bench.env(task.id)  # the default rule
            for c in calls:
                env.step(c)
            for reply in replies:
                env.hear(reply)
            db = env.db if env.db is not None else fresh_database(domain_name)
            old = env.fork()
            old.rule = "2024"
            for rule, played, rule_of_record in (("upstream", env, upstream_today), ("2024", old, upstream_2024)):
                reward = played.reward()
                assert reward.reward == rule_of_record(task, db, expected, replies), (task.id, what, rule)
                assert reward.detail.rule == rule
                scored[rule] += reward.reward
        assert bench.oracle_reward(task.id) == 1.0, task.id
    assert scored["upstream"] < scored["2024"]  # 2024 passes some plays today's rule fails, never the reverse


def test_saying_the_output_without_the_writes_passed_in_2024_and_fails_today():
    bench = domain("retail")
    task = load_tasks("retail", "test")[2]  # retail-test-2: return the delivered items, and say "10"
    assert task.outputs == ("10",) and any(a.name in WRITES["retail"] for a in task.actions)
    for rule, expected in ((None, 0.0), ("upstream", 0.0), ("2024", 1.0)):
        env = bench.env(task.id, rule)
        env.hear("You have 10 items.")
        assert env.reward().reward == expected, rule
