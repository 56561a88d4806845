"""Self-talk (Ulmer et al. 2024): a client and an agent role-play while a workflow manager steers the agent.

After each client utterance the manager decides which reference answer of the current step
it matches (a model asked a multiple-choice question, or offline ROUGE-L), and tells the agent
what to say next ("Now, you must say ..."); "none of the above" leaves the agent free and the
step where it was. A conversation stops at the turn cap, on an end phrase, when the workflow
reaches an end, or when the phase check (a model asked "start, middle or end?") says end.
Sub-goals are the workflow steps the agent said (ROUGE-L >= 0.33, `envs/workflows/progress.py`).
Every model call batches all live conversations. Plain Python: no Prefect here.
"""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.config import SCRIPT, SamplingConfig
from core.fingerprint import stable_hash
from core.types import Dialogue, Message, Outcome, Scenario, Termination
from envs.workflows import END, Workflow
from envs.workflows.client import client_turn
from envs.workflows.progress import best_match, depth
from core.types import Generation
from models.base import ChatModel
from formats import react, stops
from roleplay.lockstep import lockstep

NONE_OF_THE_ABOVE = "None of the above"


def check_roles(cfg) -> None:
    """Fail fast on a role that cannot work: every model role must load; the client may also be `script`."""
    from models.loading import check_model

    check_model(cfg.agent)
    if not cfg.user.scripted:
        check_model(cfg.user)
    if cfg.manager:
        check_model(cfg.manager)


def agent_system(workflow: Workflow) -> str:
    """The agent's system prompt: character, persona, the task and its workflow (the trained agent sees this too)."""
    steps = "\n".join(f"{i}. {s.say}" for i, s in workflow.steps.items())
    persona = f" You are {workflow.agent.persona}." if workflow.agent.persona else ""
    return (f"{workflow.agent.character}{persona}\nClients come to you because: {workflow.description}\n"
            f"Follow this workflow, one step per message, and speak only as the agent:\n{steps}")


def instruction(workflow: Workflow, step: int) -> str:
    return f'Now, you must say: "{workflow.steps[step].say}"'


def client_system(workflow: Workflow, scenario: Scenario) -> str:
    persona = f"{scenario.persona.text}\n" if scenario.persona else ""
    return (f"{persona}You are a client talking to this agent: {workflow.agent.character}\n"
            f"Your situation: {scenario.instruction}\n"
            "Say one short message at a time, only as the client. When your matter is settled, say goodbye.")


def manager_prompt(workflow: Workflow, step: int, agent_text: str, client_text: str) -> list[Message]:
    options = [a.answer for a in workflow.edges(step)] + [NONE_OF_THE_ABOVE]
    listed = "\n".join(f"{i}. {o}" for i, o in enumerate(options, 1))
    return [Message(role="user", content=(
        "You manage a conversation between a client and an agent who follows a workflow.\n"
        f'The agent said: "{agent_text}"\nThe client answered: "{client_text}"\n'
        f"Which option means the same as the client's answer?\n{listed}\nAnswer with the option number only."))]


def parse_choice(text: str, n_answers: int) -> int | None:
    """The chosen answer's index, or None for "none of the above", an out-of-range number or no number."""
    found = re.search(r"\d+", text)
    choice = int(found.group()) if found else 0
    return choice - 1 if 1 <= choice <= n_answers else None


def phase_prompt(messages: Sequence[Message]) -> list[Message]:
    said = "\n".join(f"{'Client' if m.role == 'user' else 'Agent'}: {m.content}" for m in messages)
    return [Message(role="user", content=f"Here is a conversation between a client and an agent:\n{said}\n"
                                         "Is the conversation at its start, middle or end? Answer with one word.")]


def says_end(text: str) -> bool:
    return re.search(r"\bend\b", text.lower()) is not None


def speech(text: str) -> str:
    """What the agent said: the SPEAK text when a ReAct-trained model wrote commands, else the text itself."""
    if any(re.search(rf"\b{c}\b", text) for c in react.COMMANDS):
        return react.parse_action(text).speak or ""  # a plan or a tool call is no speech
    return text.replace(react.END, "").strip()


@dataclass
class Talk:
    """One conversation in progress, seen from the agent's side (client turns are `user` messages)."""

    scenario: Scenario
    workflow: Workflow
    messages: list[Message] = field(default_factory=list)
    step: int | None = None  # the step the manager tells the agent to say next (None: no instruction)
    at: int | None = None  # the step whose answers the next client utterance is matched against
    finished: bool = False  # reached an end of the workflow
    termination: Termination | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def stop(self, why: Termination, finished: bool = False) -> None:
        self.termination, self.finished = why, self.finished or finished

    def last(self, role: str) -> str:
        return next((m.content for m in reversed(self.messages) if m.role == role), "")


class Client(ABC):
    spec: str

    @abstractmethod
    def respond(self, talks: Sequence[Talk], sampling: SamplingConfig) -> list[Generation]:
        """The client's next message in each conversation."""


class ScriptedClient(Client):
    """The workflow's reference answers, picked by a draw seeded on the seed, the scenario and the turn."""

    spec = SCRIPT

    def __init__(self, off_script: float):
        self.off_script = off_script

    def respond(self, talks: Sequence[Talk], sampling: SamplingConfig) -> list[Generation]:
        out = []
        for t in talks:
            rng = random.Random(stable_hash(sampling.seed, t.scenario.id, len(t.messages)))
            out.append(Generation(client_turn(t.workflow, t.last("assistant"), rng, self.off_script), 0, 0))
        return out


class ModelClient(Client):
    def __init__(self, model: ChatModel):
        self.model, self.spec = model, model.spec

    def respond(self, talks: Sequence[Talk], sampling: SamplingConfig) -> list[Generation]:
        flipped = {"user": "assistant", "assistant": "user"}
        prompts = [[Message(role="system", content=client_system(t.workflow, t.scenario)),
                    *(Message(role=flipped[m.role], content=m.content) for m in t.messages)] for t in talks]
        return [g[0] for g in self.model.generate(prompts, sampling)]


class Manager(ABC):
    @abstractmethod
    def match(self, talks: Sequence[Talk], sampling: SamplingConfig) -> list[int | None]:
        """For each conversation, the index of the answer of step `at` the client's last utterance matches."""

    def ended(self, talks: Sequence[Talk], sampling: SamplingConfig) -> list[bool]:
        """The phase check: whether each conversation is at its end (no check without a model)."""
        return [False] * len(talks)


class RougeManager(Manager):
    """Offline: the reference answer with the highest ROUGE-L, when it clears the threshold."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def match(self, talks: Sequence[Talk], sampling: SamplingConfig) -> list[int | None]:
        return [best_match(t.last("user"), [a.answer for a in t.workflow.edges(t.at)], self.threshold) for t in talks]


class ModelManager(Manager):
    """The paper's manager: a model answers a multiple-choice question; it also runs the phase check."""

    def __init__(self, model: ChatModel):
        self.model = model

    def match(self, talks: Sequence[Talk], sampling: SamplingConfig) -> list[int | None]:
        prompts = [manager_prompt(t.workflow, t.at, t.last("assistant"), t.last("user")) for t in talks]
        outs = self.model.generate(prompts, sampling)
        return [parse_choice(g[0].text, len(t.workflow.edges(t.at))) for t, g in zip(talks, outs)]

    def ended(self, talks: Sequence[Talk], sampling: SamplingConfig) -> list[bool]:
        return [says_end(g[0].text) for g in self.model.generate([phase_prompt(t.messages) for t in talks], sampling)]


@dataclass(frozen=True)
class Rules:
    max_turns: int = 8  # agent turns
    end_phrases: tuple[str, ...] = ("goodbye", "bye", "have a nice day")
    subgoal_threshold: float = 0.33
    guided: bool = True  # the manager's "Now, you must say ..." reaches the agent


def _has_end_phrase(text: str, phrases: Sequence[str]) -> bool:
    return any(re.search(rf"\b{re.escape(p)}\b", text.lower()) for p in phrases)


def _broken(text: str) -> Termination | None:
    if not text:
        return Termination.empty_output
    return Termination.non_coherent if stops.is_non_coherent(text) else None


def _agent_turns(talks: list[Talk], agent: ChatModel, sampling: SamplingConfig, rules: Rules) -> None:
    prompts = [[Message(role="system", content=agent_system(t.workflow)
                        + (f"\n{instruction(t.workflow, t.step)}" if rules.guided and t.step is not None else "")),
                *t.messages]
               for t in talks]
    for t, gens in zip(talks, agent.generate(prompts, sampling)):
        text = speech(gens[0].text)
        t.prompt_tokens += gens[0].prompt_tokens
        t.completion_tokens += gens[0].completion_tokens
        t.messages.append(Message(role="assistant", content=text))
        if t.step is not None:
            t.at, t.step = t.step, None
        closing = t.at is not None and not t.workflow.edges(t.at)
        if broken := _broken(text):
            t.stop(broken)
        elif closing or _has_end_phrase(text, rules.end_phrases):
            t.stop(Termination.conversation_end, finished=closing)
        elif sum(m.role == "assistant" for m in t.messages) >= rules.max_turns:
            t.stop(Termination.turn_cap)


def _client_turns(talks: list[Talk], client: Client, sampling: SamplingConfig, rules: Rules) -> None:
    for t, g in zip(talks, client.respond(talks, sampling)):
        text = g.text.strip()
        t.prompt_tokens += g.prompt_tokens
        t.completion_tokens += g.completion_tokens
        t.messages.append(Message(role="user", content=text))
        if stops.is_role_flip(text):
            t.stop(Termination.role_flip)
        elif broken := _broken(text):
            t.stop(broken)
        elif _has_end_phrase(text, rules.end_phrases):
            t.stop(Termination.user_ended)


def _steer(talks: list[Talk], manager: Manager, sampling: SamplingConfig) -> None:
    steered = [t for t in talks if t.at is not None and t.workflow.edges(t.at)]
    for t, choice in zip(steered, manager.match(steered, sampling) if steered else []):
        if choice is None:
            continue  # none of the above: the agent answers freely, the step stays
        target = t.workflow.edges(t.at)[choice].next
        if target == END:
            t.stop(Termination.user_ended, finished=True)
        else:
            t.step = target
    live = [t for t in talks if t.termination is None]
    for t, end in zip(live, manager.ended(live, sampling) if live else []):
        if end:
            t.stop(Termination.conversation_end)


def run_selftalk(scenarios: Sequence[tuple[Scenario, Workflow]], agent: ChatModel, client: Client, manager: Manager,
                 sampling: dict[str, SamplingConfig], rules: Rules = Rules()) -> list[Dialogue]:
    """One dialogue per scenario; `sampling` has an entry per role: agent, client, manager."""
    talks = [Talk(s, w, step=w.first) for s, w in scenarios]

    def one_round(live: list[Talk]) -> None:
        _agent_turns(live, agent, sampling["agent"], rules)
        if live := [t for t in live if t.termination is None]:
            _client_turns(live, client, sampling["client"], rules)
        if live := [t for t in live if t.termination is None]:
            _steer(live, manager, sampling["manager"])

    lockstep(talks, lambda t: t.termination is not None, one_round, "self-talk", "dlg")
    return [dialogue(t, agent.spec, client.spec, rules.subgoal_threshold) for t in talks]


def dialogue(t: Talk, agent_spec: str, client_spec: str, threshold: float) -> Dialogue:
    said = [m.content for m in t.messages if m.role == "assistant"]
    steps, relative = depth(t.workflow, said, threshold)
    outcome = Outcome(reward=relative, success=t.finished, termination=t.termination, turns=len(said),
                      prompt_tokens=t.prompt_tokens, completion_tokens=t.completion_tokens,
                      workflow_steps=steps, workflow_depth=relative)
    return Dialogue(scenario=t.scenario, messages=tuple(t.messages), outcome=outcome, agent_model=agent_spec,
                    user_model=client_spec)
