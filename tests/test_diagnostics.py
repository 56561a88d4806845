"""Copy rate and per-API accuracy read off a dialogue: what the customer said, what the next call carried."""

from core.types import Dialogue, Message, Outcome, Scenario, ToolCall
from envs.toolwoz.diagnostics import api_accuracy, copied_values, copy_rate
from formats.react import format_call

TASK = "MUL0032.json"  # a moderate hotel in the centre, then a moderate chinese restaurant in the centre


def _dialogue(*messages: Message) -> Dialogue:
    return Dialogue(scenario=Scenario(domain="toolwoz", task_id=TASK, instruction=""), messages=messages,
                    outcome=Outcome(reward=0.0, success=False), agent_model="a", user_model="u")


def _call(name: str, **arguments) -> Message:
    call = ToolCall(name=name, arguments=arguments)
    return Message(role="assistant", content=format_call(call), tool_calls=(call,))


def test_a_value_counts_as_copied_when_the_next_call_able_to_carry_it_does(toolwoz):
    copied = _dialogue(Message(role="user", content="A moderate hotel in the centre, please."),
                       _call("search_restaurant", area="north"),  # cannot carry a hotel value: not the next call for it
                       _call("search_hotel", area="centre", pricerange="cheap"),
                       Message(role="user", content="I also want chinese food."),
                       _call("search_restaurant", food="chinese"))
    # "moderate" and "centre" are goal values of both domains: heard once, they wait for a call of each domain;
    # the restaurant call misses both, the hotel call copies "centre" only, the last call copies "chinese"
    assert copied_values(toolwoz, copied) == (2, 6)
    never = _dialogue(Message(role="user", content="Chinese food."))
    assert copied_values(toolwoz, never) == (0, 1)  # said, never called: a miss
    assert copy_rate(toolwoz, [copied, never]) == 2 / 7


def test_api_accuracy_replays_the_calls(toolwoz):
    right = _dialogue(Message(role="user", content="hi"),
                      _call("search_hotel", area="centre", parking="no", pricerange="moderate", type="hotel"))
    wrong = _dialogue(Message(role="user", content="hi"), _call("search_restaurant", food="thai"))
    assert api_accuracy(toolwoz, [right, wrong]) == {"search_hotel": 0.5, "search_restaurant": 0.0}
