"""The ReAct format: what the parser accepts, and the clear errors it gives otherwise."""

from envs.registry import domain
from core.types import Message, ToolCall
from formats.react import agent_view, parse_action, show_result


def test_call_is_parsed_and_anything_after_the_first_action_dropped():
    out = 'PLAN look it up <COMMAND_END> APICALL {"name": "search_hotel", "parameters": {"area": "north"}} <COMMAND_END> SPEAK done'
    action = parse_action(out)
    assert action.call == ToolCall(name="search_hotel", arguments={"area": "north"})
    assert action.attempted_call and action.speak is None and action.error is None
    assert "SPEAK" not in action.text and action.text.endswith("<COMMAND_END>")


def test_speak_ends_the_turn_with_the_spoken_text_only():
    action = parse_action("PLAN greet <COMMAND_END> SPEAK Hello, how can I help? <COMMAND_END>")
    assert action.speak == "Hello, how can I help?" and action.call is None and not action.attempted_call


def test_malformed_calls_are_errors_that_count_as_attempted_calls():
    for out in ['APICALL {"name": "a", "parameters": {', "APICALL search_hotel", 'APICALL {"parameters": {}}',
                'APICALL {"name": "a", "parameters": [1]}']:
        action = parse_action(out)
        assert action.call is None and action.attempted_call
        assert action.error.startswith("ERROR: MALFORMED APICALL"), out


def test_output_without_a_command_is_an_error_but_not_a_call():
    action = parse_action("I think the hotel is nice.")
    assert action.error.startswith("ERROR: NO COMMAND FOUND") and not action.attempted_call
    assert parse_action("SPEAK   ").error.startswith("ERROR: EMPTY SPEAK")


def test_agent_view_shows_tool_results_as_apireturn_turns():
    record = [Message(role="user", content="hi"), Message(role="assistant", content="APICALL {}"),
              Message(role="tool", content="[]")]
    view = agent_view("SYSTEM", record)
    assert [m.role for m in view] == ["system", "user", "assistant", "user"]
    assert view[-1].content == "APIRETURN []"


def test_tool_results_are_shown_flat_with_every_fact_and_errors_as_they_are():
    rows = '[{"name": "acorn guest house", "price": {"double": "75"}, "location": [52.2, 0.1], "intro": ""}, {"name": "b"}]'
    assert show_result(rows) == "name: acorn guest house, price: (double: 75), location: [52.2, 0.1] | name: b"
    booked = '{"success": true, "return": {"reference": "59FZCVEC"}}'
    assert show_result(booked) == "success: true, return: (reference: 59FZCVEC)"
    assert show_result("ERROR: unknown api") == "ERROR: unknown api"


def test_prompts_list_every_tool(toolwoz):
    names = [t["function"]["name"] for t in toolwoz.tool_schemas]
    for style in ("full", "compact"):
        prompt = domain("toolwoz").react_system(style)
        assert all(n in prompt for n in names)
    assert len(domain("toolwoz").react_system("compact")) < len(domain("toolwoz").react_system("full")) / 4
