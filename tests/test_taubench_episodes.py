"""tau-bench episodes: the environment (reward, sub-goals, forks, transfer), the customer's ###STOP###, the
function-calling format (written and native calls, malformed ones as errors the agent sees), and pass^k."""

import json

import pytest

from core.config import SamplingConfig
from roleplay.config import EvalConfig
from core.types import Dialogue, JoshTree, Message, Outcome, Scenario, Termination, ToolCall, TreeNode
from envs.taubench.data import load_tasks
from envs.taubench.env import TauEnv
from envs.taubench.retail import WRITES
from envs.taubench.user import agenda, scripted_turn
from core.types import FunctionCall, Generation
from quality.metrics import pass_hat_k
from formats import function_calling
from roleplay import harvest
from envs.registry import domain
from roleplay.rollout import agent_format, episode
from roleplay.rollout import run_episodes

from conftest import Scripted


def _write_task():
    return next(t for t in load_tasks("retail", "test") if not t.outputs and sum(a.name in WRITES for a in t.actions) == 1
                and t.actions[-1].name in WRITES)


def _call(action):
    return ToolCall(name=action.name, arguments=dict(action.kwargs))


def test_the_env_earns_one_sub_goal_per_ground_truth_action_and_forks_share_the_database_until_a_write():
    task = _write_task()
    env = TauEnv(task)
    assert env.reward().earned == (False,) * len(task.actions) and env.reward().reward == 0.0
    *reads, write = task.actions
    for action in reads:
        assert env.step(_call(action)).ok
    assert env.reward().earned == (True,) * len(reads) + (False,)
    twin = env.fork()
    assert twin.db is env.db
    twin.step(_call(write))
    assert twin.db is not env.db and twin.reward().reward == 1.0 and all(twin.reward().earned)
    assert env.reward().reward == 0.0 and not env.reward().earned[-1]  # the other branch's database is untouched
    wrong = dict(write.kwargs, **{k: "#W0000000" for k in write.kwargs if k == "order_id"})
    env.step(ToolCall(name=write.name, arguments=wrong))
    assert not env.reward().earned[-1]  # arguments must match, not only the name
    assert not env.finished
    env.step(ToolCall(name="transfer_to_human_agents", arguments={"summary": "wants a manager"}))
    assert env.finished


def test_a_ground_truth_action_the_tools_refuse_is_earned_by_making_it():
    task = load_tasks("retail", "train")[469]  # its payment change is refused: insufficient gift card balance
    env = TauEnv(task)
    results = [env.step(_call(a)) for a in task.actions]
    assert any(r.text.startswith("Error") and not r.ok for r in results)
    assert env.reward().reward == 1.0 and all(env.reward().earned)


def test_a_task_that_only_asks_for_outputs_is_won_by_saying_them():
    task = next(t for t in load_tasks("retail", "test") if t.outputs and not any(a.name in WRITES for a in t.actions))
    env = TauEnv(task)
    env.hear("Let me check.")
    assert env.reward().reward == 0.0
    env.hear(" and ".join(task.outputs).upper())
    assert env.reward().success


def test_function_calls_are_parsed_written_or_native_and_malformed_ones_become_errors():
    written = function_calling.parse(Generation('Let me look. <tool_call>{"name": "get_user_details", '
                                                '"arguments": {"user_id": "sara_doe_496"}}</tool_call> trailing', 1, 1))
    assert written.call == ToolCall(name="get_user_details", arguments={"user_id": "sara_doe_496"})
    assert written.text.endswith("</tool_call>")
    said = function_calling.parse(Generation("Your order is on its way.", 1, 1))
    assert said.speak == "Your order is on its way." and said.call is None
    for bad in ('<tool_call>{"name": "x", "arguments": {</tool_call>', '<tool_call>{"arguments": {}}</tool_call>',
                '<tool_call>{"name": "x", "arguments": [1]}</tool_call>'):
        action = function_calling.parse(Generation(bad, 1, 1))
        assert action.call is None and action.error.startswith("Error: malformed tool call") and action.attempted_call
    native = function_calling.parse(Generation("", 1, 1, (FunctionCall("call_1", "calculate", '{"expression": "1+1"}'),)))
    assert native.call == ToolCall(name="calculate", arguments={"expression": "1+1"}, id="call_1")
    broken = function_calling.parse(Generation("", 1, 1, (FunctionCall("call_2", "calculate", '{"expression": '),)))
    assert broken.error.startswith("Error: malformed tool call (arguments are not JSON")


def test_the_written_view_shows_native_calls_as_text_for_training_a_local_model():
    call = ToolCall(name="calculate", arguments={"expression": "2*3"}, id="call_1")
    record = [Message(role="user", content="hi"), Message(role="assistant", content="", tool_calls=(call,)),
              Message(role="tool", content="6", tool_call_id="call_1")]
    native = function_calling.agent_view("sys", record, native=True)
    assert native[2].tool_calls == (call,) and native[3].role == "tool"
    written = function_calling.agent_view("sys", record, native=False)
    assert json.loads(written[2].content.removeprefix("<tool_call>").removesuffix("</tool_call>"))["name"] == "calculate"
    assert written[3] == Message(role="user", content="<tool_response>\n6\n</tool_response>")


@pytest.mark.parametrize("fmt", ["react", "tools"])
def test_a_scripted_agent_doing_the_ground_truth_wins_and_the_customer_stops_the_episode(fmt):
    task = _write_task()
    bench = domain("retail")
    cfg = EvalConfig(benchmark="retail", split="test", user={"spec": "embedded"}, agent_format=fmt, max_agent_steps=10)
    agent_fmt = agent_format(bench, cfg)
    written = {"react": lambda c: f'APICALL {{"name": "{c.name}", "parameters": {json.dumps(c.arguments)}}} <COMMAND_END>',
               "tools": function_calling.format_call}[fmt]
    done = written(_call(task.actions[-1]))

    def agent(prompt):
        made = sum(m.content.startswith(("APIRETURN", "<tool_response>")) for m in prompt)
        if made < len(task.actions):
            return written(_call(task.actions[made]))
        return "SPEAK All done. <COMMAND_END>" if fmt == "react" else "All done."

    customer = Scripted(lambda p: "###STOP###" if any("All done" in m.content for m in p) else "I need help with my order")
    (ep,) = run_episodes([episode(bench, bench.scenario(task.id), agent_fmt, cfg)], Scripted(agent), customer,
                         SamplingConfig(), SamplingConfig())
    dialogue = ep.to_dialogue()
    assert dialogue.outcome.termination == Termination.user_ended and dialogue.outcome.success
    assert dialogue.outcome.api_calls == len(task.actions) and dialogue.outcome.invalid_calls == 0
    assert done in [m.content.strip() for m in dialogue.messages if m.role == "assistant"]
    assert "###STOP###" in customer.prompts[0][0].content and task.instruction in customer.prompts[0][0].content


def test_the_offline_customer_tells_the_instruction_in_the_first_person_then_stops():
    instruction = ("Your name is Omar Anderson and your zip code is 19031. You are logical, independent, polite. "
                   "Return #W6067464 via credit_card_4190576: Electric Kettle; Wall Clock; ")
    assert agenda(instruction) == ["My name is Omar Anderson and my zip code is 19031.",
                                   "Return #W6067464 via credit_card_4190576: Electric Kettle; Wall Clock;"]
    assert scripted_turn(instruction, 1).startswith("Return") and scripted_turn(instruction, 2) == "###STOP###"
    assert agenda("You are mia_li_3668. You want to fly to Seattle.") == ["I am mia_li_3668.", "I want to fly to Seattle."]


def test_twins_making_the_same_native_call_are_no_preference_pair():
    prompt = (Message(role="user", content="cancel my order"),)

    def node(call_id, successful):
        call = ToolCall(name="get_order_details", arguments={"order_id": "#W1"}, id=call_id)
        turn = (Message(role="assistant", tool_calls=(call,)), Message(role="tool", content="{}", tool_call_id=call_id),
                Message(role="assistant", content="Done." if successful else "Sorry."))
        return TreeNode(messages=prompt + turn, turn_start=1, is_successful=successful)

    tree = JoshTree(dialogue=Dialogue(scenario=Scenario(domain="retail", task_id="t", instruction=""), messages=(),
                                      outcome=Outcome()), nodes=(node("call_a", True), node("call_b", False)))
    (pair,) = harvest.preference_pairs(tree)  # the ids differ, the calls do not: the turns diverge at the reply
    assert (pair.chosen.content, pair.rejected.content) == ("Done.", "Sorry.")


def test_pass_hat_k_is_the_chance_that_k_trials_all_succeed():
    def dialogue(task, success):
        return Dialogue(scenario=Scenario(domain="retail", task_id=task, instruction=""), messages=(),
                        outcome=Outcome(success=success, reward=float(success)))

    runs = [dialogue("a", s) for s in (True, False, True, False)] + [dialogue("b", True)] * 4
    found = pass_hat_k(runs, 4)
    assert found[1] == pytest.approx(0.75) and found[2] == pytest.approx((1 / 6 + 1) / 2)
    assert found[3] == pytest.approx(0.5) and found[4] == pytest.approx(0.5)
