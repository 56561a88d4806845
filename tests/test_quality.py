"""Quality metrics and expectation suites on hand-built dialogues: each filter drops what it should, and only that."""

from __future__ import annotations

import random

import pytest
from chat_server import ChatServer

from core.config import ModelConfig, SamplingConfig
from core.errors import ConfigError
from core.types import Dialogue, Message, Outcome, Persona, Scenario, Termination
from models.loading import load_model
from quality.dialogue_table import batch_summary, dialogue_table, max_repeat_run
from quality.judge import persona_scores
from quality.near_duplicates import cluster_near_duplicates
from quality.suites import SUITES_DIR, load_suite
from quality.validation import check_batch, filter_rows, funnel
from formats.react import format_speak

PERSONA = Persona(attributes={"age": "30"}, text="A 30-year-old teacher who speaks briefly.")


def dialogue(task: str, *turns: tuple[str, str], reward: float = 1.0, termination=Termination.user_ended,
             persona: Persona | None = None) -> Dialogue:
    """`turns` as (role, text); agent texts are spoken (wrapped in SPEAK), `tool` texts are call results."""
    messages = tuple(Message(role=r, content=format_speak(t) if r == "assistant" else t) for r, t in turns)
    return Dialogue(scenario=Scenario(domain="test", task_id=task, instruction="book a hotel", persona=persona),
                    messages=messages, outcome=Outcome(reward=reward, success=reward == 1.0, termination=termination,
                                                       turns=len(turns)))


def good(task: str = "good", **kw) -> Dialogue:
    return dialogue(task, ("user", f"I need a cheap hotel in the north for {task}."), ("assistant", "Which day do you arrive?"),
                    ("user", "On friday, for two nights. END_CONVERSATION"), **kw)


# (suite, reason) -> dialogues whose first one must fail the entry and whose others must pass it
CASES = {
    ("roleplay", "empty_dialogue"): [dialogue("bad"), good()],
    ("roleplay", "no_prompt"): [dialogue("bad", ("user", "Hello, I need a hotel."), ("assistant", "Sure, where?"), ("user", "  ")),
                                good()],
    ("roleplay", "multiple_prompts"): [dialogue("bad", ("user", "User: I need a hotel.\nUser: In the north, please.")), good()],
    ("roleplay", "non_coherent"): [dialogue("bad", ("user", "I need a hotel."), ("assistant", "the hotel is the hotel is booked")),
                                   good()],
    ("roleplay", "self_replies"): [dialogue("bad", ("user", "I need a hotel."), ("user", "Agent: which area?")), good()],
    ("roleplay", "role_flip"): [dialogue("bad", ("user", 'APICALL {"name": "search_hotel", "parameters": {}}')), good()],
    ("roleplay", "not_ended"): [good("bad", termination=Termination.turn_cap), good()],
    ("roleplay", "repeated_utterances"): [dialogue("bad", *[("user", "Any hotel in the north?"), ("assistant", "Let me check.")] * 3),
                                          good()],
    ("roleplay", "goal_not_conveyed"): [good("bad"), good()],  # the goal check below: "bad" said 1 of 4 values
    ("roleplay", "out_of_character"): [dialogue("bad", ("user", "As an AI language model, I cannot travel."), persona=PERSONA),
                                       good(persona=PERSONA)],
    ("roleplay", "near_duplicate"): [good("twin"), good("other"), good("twin")],  # the third copies the first
    ("josh", "reward_below_full"): [good("bad", reward=0.5), good()],
    ("josh", "error_on_path"): [dialogue("bad", ("user", "A hotel."), ("tool", "ERROR: INVALID API CALL! bad parameters")),
                                dialogue("ok", ("user", "A hotel."), ("tool", '{"name": "acorn guest house"}'))],
    ("selftalk", "few_workflow_steps"): [good("bad"), good()],  # workflow steps set on the table below: 2 and 5
    ("selftalk", "not_top_completion"): [good(f"t{i}", reward=i / 40) for i in range(39, -1, -1)][::-1],  # lowest first
    ("selftalk", "not_ended"): [good("bad", termination=Termination.agent_retries_exhausted), good()],
}


def conveyed_goal(d: Dialogue):
    return (1, 4) if d.scenario.task_id == "bad" else (4, 4)


def verdicts_for(suite_name: str, dialogues: list[Dialogue]):
    table = dialogue_table(dialogues, conveyed_goal)
    if suite_name == "selftalk":
        table["workflow_steps"] = [2, 5] + [None] * (len(table) - 2)
    return table, filter_rows(table, [load_suite(suite_name)])


@pytest.mark.parametrize("suite_name,reason", sorted(CASES))
def test_entry_drops_the_bad_dialogue_and_keeps_the_good(suite_name, reason):
    dialogues = CASES[suite_name, reason]
    table, verdicts = verdicts_for(suite_name, dialogues)
    entry = next(e for e in load_suite(suite_name).rows if e.reason == reason)
    if reason == "near_duplicate":
        bad, fine = [2], [0, 1]  # the later copy is flagged, never the first of its cluster
    elif reason == "not_top_completion":
        bad, fine = list(range(38)), [38, 39]  # top 5% of 40 rows = the 2 highest rewards
    else:
        bad, fine = [0], list(range(1, len(dialogues)))
    flagged = verdicts.dropped if entry.severity == "critical" else verdicts.warned
    for i in bad:
        assert reason in flagged.get(i, []), (i, table.iloc[i].to_dict())
    for i in fine:
        assert reason not in verdicts.dropped.get(i, []) + verdicts.warned.get(i, []), (i, table.iloc[i].to_dict())


def test_every_shipped_suite_entry_has_a_case():
    entries = {(p.stem, e.reason) for p in SUITES_DIR.glob("*.yaml") for e in load_suite(p.stem).rows}
    assert entries == set(CASES)


def test_a_warning_never_drops():
    dialogues = [good("bad", termination=Termination.turn_cap), good("twin"), good("twin")]
    table = dialogue_table(dialogues, conveyed_goal)
    verdicts = filter_rows(table, [load_suite("roleplay")])
    assert verdicts.warned and not verdicts.dropped
    assert verdicts.kept(len(table)) == [0, 1, 2]
    assert [r["rows left"] for r in funnel(len(table), verdicts)] == ["3"] * len(verdicts.checks)


def test_workflow_columns_are_skipped_where_no_workflow_exists():
    table, verdicts = verdicts_for("josh", [good(), good("b")])
    assert table["workflow_steps"].isna().all()
    verdicts = filter_rows(table, [load_suite("selftalk")])
    assert not any("few_workflow_steps" in r for r in verdicts.dropped.values())


def test_funnel_counts_rows_left_in_suite_order():
    dialogues = [good("a", reward=0.0), dialogue("b", ("user", "A hotel."), ("tool", "ERROR: INVALID API CALL! x")), good("c")]
    table = dialogue_table(dialogues)
    verdicts = filter_rows(table, [load_suite("josh")])
    assert funnel(3, verdicts) == [
        {"suite": "josh", "reason": "reward_below_full", "severity": "critical", "gates": "sft", "failing rows": "1",
         "rows left": "2"},
        {"suite": "josh", "reason": "error_on_path", "severity": "critical", "gates": "sft", "failing rows": "1",
         "rows left": "1"},
    ]
    assert verdicts.dropped == {0: ["reward_below_full"], 1: ["error_on_path"]}


def test_an_entry_keeps_rows_out_of_the_training_sets_it_gates_only():
    dialogues = [good("partial", reward=0.5), CASES["roleplay", "role_flip"][0], good("full")]
    verdicts = filter_rows(dialogue_table(dialogues), [load_suite("roleplay"), load_suite("josh")])
    assert verdicts.kept(3) == verdicts.kept_for(3, "sft") == [2]
    assert verdicts.kept_for(3, "dpo") == verdicts.kept_for(3, "kto") == [0, 2]  # JOSH's filter gates SFT only


@pytest.mark.parametrize("reason,summary", [
    ("too_few_kept", {"kept_share": 0.0}),
    ("low_diversity", {"distinct_2": 0.01}),
    ("duplicate_ids", {"duplicate_ids": 2}),
    ("near_duplicate_cluster", {"largest_near_duplicate_cluster": 80}),
])
def test_batch_entry_fails_a_bad_batch_and_passes_a_good_one(reason, summary):
    fine = {"kept_share": 0.5, "distinct_2": 0.4, "duplicate_ids": 0, "largest_near_duplicate_cluster": 1}
    suites = [load_suite("batch")]
    assert all(c.success for c in check_batch(fine, suites))
    failed = [c.entry.reason for c in check_batch({**fine, **summary}, suites) if not c.success]
    assert failed == [reason]


def test_batch_summary_measures_the_kept_rows():
    dialogues = [good("a"), good("a"), good("b", reward=0.0)]
    table = dialogue_table(dialogues)
    summary = batch_summary(table, [0, 1], dialogues)
    assert summary["kept_share"] == pytest.approx(2 / 3)
    assert summary["duplicate_ids"] == 1
    assert summary["largest_near_duplicate_cluster"] == 2
    assert 0 < summary["distinct_2"] < 1


def test_repeat_run_counts_back_to_back_copies():
    assert max_repeat_run("i would like a hotel in the north") == 1
    assert max_repeat_run("thank you thank you thank you so much") == 3
    assert max_repeat_run("a b c d a b c d") == 2
    assert max_repeat_run("yes yes") == 1  # single words are not n-grams of 2 or more


def test_near_duplicates_cluster_copies_not_strangers():
    rng = random.Random(0)
    words = [f"w{i}" for i in range(1000)]
    texts = [" ".join(rng.choice(words) for _ in range(80)) for _ in range(300)]
    copies = []
    for t in texts[:30]:
        w = t.split()
        w[rng.randrange(80)] = "changed"  # one word of 80: Jaccard ~0.93
        copies.append(" ".join(w))
    clusters = cluster_near_duplicates(texts + copies, 0.8)
    assert sum(clusters[300 + i] == i for i in range(30)) >= 28
    assert all(clusters[i] == i for i in range(300))


@pytest.mark.parametrize("text,expected", [
    ("name: x\nrows:\n  - reason: ok\n    expectation: expect_column_values_to_be_between\n    kwargs: {column: reward, min_value: 0}\n"
     "  - reason: typo\n    expectation: expect_colum_values_to_be_between\n    kwargs: {column: reward}\n",
     "rows entry 2 (typo): unknown expectation 'expect_colum_values_to_be_between'"),
    ("name: x\nrows:\n  - reason: sev\n    severity: fatal\n    expectation: expect_column_values_to_be_between\n",
     "rows entry 1 (sev): severity"),
    ("name: x\nbatch:\n  - reason: args\n    expectation: expect_column_values_to_be_between\n    kwargs: {min_value: 1}\n",
     "batch entry 1 (args): bad arguments for expect_column_values_to_be_between: column: field required"),
    ("name: x\nrows:\n  - reason: a\n    expectation: expect_column_values_to_be_between\n    kwargs: {column: reward, max_value: 1}\n    color: red\n",
     "rows entry 1 (a): color: unknown key"),
    ("name: x\nrows: [\n", "malformed YAML in"),
])
def test_malformed_suite_file_is_one_line_naming_file_and_entry(tmp_path, text, expected):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_suite(str(path))
    message = str(e.value)
    assert "\n" not in message and str(path) in message and expected in message, message


def test_unknown_suite_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known suites: batch, josh, roleplay, selftalk"):
        load_suite("nope")


class JudgeServer(ChatServer):
    """A judge that scores 1 when the customer broke character and 5 otherwise."""

    def completion(self, body: dict) -> dict:
        reply = super().completion(body)
        score = "1" if "As an AI" in body["messages"][-1]["content"] else "Score: 5"
        reply["choices"][0]["message"]["content"] = score
        return reply


def test_an_llm_judge_replaces_the_persona_proxy(monkeypatch):
    monkeypatch.setenv("SELFTRAIN_TEST_JUDGE_KEY", "sk-test")
    with JudgeServer() as server:
        judge = load_model(ModelConfig(spec="openai:tiny", base_url=server.url, api_key_env="SELFTRAIN_TEST_JUDGE_KEY"))
        dialogues = [CASES["roleplay", "out_of_character"][0], good(persona=PERSONA), good()]
        scores = persona_scores(dialogues, judge, SamplingConfig(max_new_tokens=8))
        judge.close()
    assert scores == [0.0, 1.0, None]  # the dialogue without a persona is not judged
    assert len(server.requests) == 2 and PERSONA.text in server.requests[0]["messages"][0]["content"]
    table = dialogue_table(dialogues, judged=scores)
    assert table["persona_adherence"].tolist()[:2] == [0.0, 1.0]
    verdicts = filter_rows(table, [load_suite("roleplay")])
    assert "out_of_character" in verdicts.warned[0] and 1 not in verdicts.warned
