"""Role-play between a user simulator and an agent (ReAct or function calling), tools executed in the environment.

An `Episode` is one conversation as a small state machine (who speaks next, what each saw);
`run_episodes` steps many of them in lockstep so that every model call is one batch across
conversations (a local model generates them together; an API backend sends them
concurrently). Plain Python: no Prefect here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


from core.config import SamplingConfig
from roleplay.config import RolePlayConfig
from roleplay.lockstep import lockstep
from core.types import Dialogue, Generation, Message, Outcome, Scenario, Termination, ToolCall
from envs.domain import Domain, Environment
from core.errors import ConfigError
from formats import function_calling, grammar, react, stops
from models.base import ChatModel
from models.specs import parse_spec
from roleplay.users import UserSimulator, as_user, ends_conversation

RETRIES_EXHAUSTED = "Error: Agent ran out of retries."


@dataclass(frozen=True)
class AgentFormat:
    """How the agent's turns are written and read: its system prompt, its view of the record, its parser, and
    the tool schemas sent with every call to a backend that calls functions natively."""

    system: str
    view: Callable[[str, list[Message]], list[Message]]
    parse: Callable[[Generation], react.AgentAction]
    native_tools: tuple[dict[str, Any], ...] | None = None
    grammar: str | None = None  # what a local model's replies are held to (structured generation), if anything

    @classmethod
    def react(cls, system: str, grammar: str | None = None) -> "AgentFormat":
        return cls(system, react.agent_view, lambda gen: react.parse_action(gen.text), grammar=grammar)

    @classmethod
    def function_calling(cls, system: str, schemas: list[dict[str, Any]], native: bool,
                         grammar: str | None = None) -> "AgentFormat":
        return cls(system, lambda s, record: function_calling.agent_view(s, record, native), function_calling.parse,
                   tuple(schemas) if native else None, grammar)


class Episode:
    """One conversation: the agent's record, what the customer saw, whose turn it is, and counters."""

    def __init__(
        self, scenario: Scenario, env: Environment, fmt: AgentFormat, max_messages: int = 15, max_agent_steps: int = 3,
        customer_acts: bool = False,
    ):
        self.scenario = scenario
        self.customer_acts = customer_acts  # the customer may call its own tools (`<tool_call>`), seen by it alone
        self.env = env
        self.format = fmt
        self.max_messages = max_messages
        self.max_agent_steps = max_agent_steps
        self.record: list[Message] = []  # everything the agent saw and did
        self.visible: list[Message] = []  # what the customer saw
        self.waiting_for: Literal["user", "agent"] | None = "user"
        self.termination = Termination.turn_cap
        self.agent_steps = 0
        self.api_calls = 0
        self.invalid_calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.samples: list[Generation] | None = None  # the agent's generations, kept when this is a list (online RL)

    @property
    def done(self) -> bool:
        return self.waiting_for is None

    def fork(self) -> "Episode":
        """An independent copy that continues from here (a JOSH branch); the task data stays shared."""
        twin = copy.copy(self)
        twin.env, twin.record, twin.visible = self.env.fork(), list(self.record), list(self.visible)
        twin.samples = None if self.samples is None else list(self.samples)
        return twin

    def agent_prompt(self) -> list[Message]:
        return self.format.view(self.format.system, self.record)

    def on_user(self, gen: Generation) -> None:
        self._count(gen)
        text = gen.text.strip()
        if not text:
            return self.finish(Termination.empty_output)
        if self.customer_acts and (call := function_calling.parse(gen).call) is not None:
            return self._customer_call(text, call)
        self._say(Message(role="user", content=text))
        if ends_conversation(text, self.scenario):
            return self.finish(Termination.user_ended)
        if stops.is_role_flip(text):
            return self.finish(Termination.role_flip)
        if stops.is_non_coherent(text):
            return self.finish(Termination.non_coherent)
        self.waiting_for, self.agent_steps = "agent", 0

    def _customer_call(self, text: str, call: ToolCall) -> None:
        """The customer ran a tool on its side: it sees the result and speaks again; the agent sees neither."""
        result = self.env.user_step(call)
        self.visible += [Message(role="user", content=text), Message(role="tool", content=result.text)]
        if len(self.visible) >= self.max_messages:
            self.finish(Termination.turn_cap)

    def on_agent(self, gen: Generation) -> None:
        self._count(gen)
        if self.samples is not None:
            self.samples.append(gen)
        self.agent_steps += 1
        if not gen.text.strip() and not gen.tool_calls:
            return self.finish(Termination.empty_output)
        action = self.format.parse(gen)
        self.api_calls += action.attempted_call
        if action.speak is not None:
            self.record.append(Message(role="assistant", content=action.text))
            self.visible.append(Message(role="assistant", content=action.speak))
            self.env.hear(action.speak)
            if stops.is_non_coherent(action.speak):
                return self.finish(Termination.non_coherent)
            return self._end_agent_turn()
        if action.call is not None:
            result = self.env.step(action.call)
            observation = result.text
            self.invalid_calls += not result.ok
            made = (action.call,)
        else:  # a malformed native call keeps its id, so that the error answers it as that call's result
            observation = action.error
            self.invalid_calls += action.attempted_call
            made = tuple(ToolCall(name=c.name, id=c.id) for c in gen.tool_calls[:1])
        self.record.append(Message(role="assistant", content=action.text, tool_calls=made))
        self.record.append(Message(role="tool", content=observation, tool_call_id=made[0].id if made else None))
        if self.env.finished:
            return self.finish(Termination.transferred)
        if self.agent_steps >= self.max_agent_steps:
            self._say(Message(role="assistant", content=RETRIES_EXHAUSTED))
            self.finish(Termination.agent_retries_exhausted)

    def to_dialogue(self, agent_model: str = "", user_model: str = "") -> Dialogue:
        result = self.env.reward()
        outcome = Outcome(
            reward=result.reward,
            success=result.success,
            reward_basis=getattr(result, "breakdown", {}),
            judged=getattr(result, "judged", True),
            termination=self.termination,
            turns=len(self.visible),
            api_calls=self.api_calls,
            invalid_calls=self.invalid_calls,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
        )
        return Dialogue(
            scenario=self.scenario,
            messages=tuple(self.record),
            outcome=outcome,
            agent_model=agent_model,
            user_model=user_model,
        )

    def _say(self, message: Message) -> None:
        self.record.append(message)
        self.visible.append(message)

    def _end_agent_turn(self) -> None:
        if len(self.visible) >= self.max_messages:
            return self.finish(Termination.turn_cap)
        self.waiting_for = "user"

    def finish(self, why: Termination) -> None:
        self.termination, self.waiting_for = why, None

    def _count(self, gen: Generation) -> None:
        self.prompt_tokens += gen.prompt_tokens
        self.completion_tokens += gen.completion_tokens


def take_turns(episodes: list[Episode], agent: ChatModel, user: UserSimulator, sampling: SamplingConfig) -> list[Generation]:
    """One batched call for every episode waiting for the same role; each episode takes its turn."""
    if not episodes:
        return []
    if episodes[0].waiting_for == "user":
        gens = user.respond([(e.scenario, e.visible) for e in episodes], sampling)
        for episode, gen in zip(episodes, gens):
            episode.on_user(gen)
    else:
        fmt = episodes[0].format
        prompts = [e.agent_prompt() for e in episodes]
        hints = {k: v for k, v in (("tools", fmt.native_tools), ("grammar", fmt.grammar)) if v}
        gens = [g[0] for g in agent.generate(prompts, sampling, **hints)]
        for episode, gen in zip(episodes, gens):
            episode.on_agent(gen)
    return gens


def run_episodes(
    episodes: list[Episode],
    agent: ChatModel,
    user: UserSimulator | ChatModel,
    agent_sampling: SamplingConfig,
    user_sampling: SamplingConfig,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Episode]:
    """Play all episodes to the end; each round is one batched call per role."""
    user = as_user(user)

    def one_round(live: list[Episode]) -> None:
        for role, sampling in (("user", user_sampling), ("agent", agent_sampling)):
            take_turns([e for e in live if e.waiting_for == role], agent, user, sampling)

    lockstep(episodes, lambda e: e.done, one_round, "dialogues", "dlg", on_progress)
    return episodes


def agent_format(domain: Domain, cfg: RolePlayConfig, native: bool | None = None) -> AgentFormat:
    """The agent's format from the config: ReAct text, or function calling (native with an `openai:` agent
    unless `native` says otherwise); with `constrained`, the grammar a local agent's replies are held to."""
    local = parse_spec(cfg.agent.spec)[0] != "openai"
    if cfg.constrained and not local:
        raise ConfigError("constrained=true holds a local model's decoding to the format; an OpenAI-compatible server "
                          "constrains its own (vLLM: structured outputs): use a local agent or constrained=false")
    if cfg.agent_format == "react":
        return AgentFormat.react(domain.react_system(cfg.agent_prompt),
                                 grammar.react_grammar(domain.tool_schemas()) if cfg.constrained else None)
    if native is None:
        native = not local
    schemas = domain.tool_schemas()
    system = function_calling.system_prompt(domain.instructions(cfg.agent_prompt), schemas, native)
    return AgentFormat.function_calling(system, schemas, native,
                                        grammar.function_calling_grammar(schemas) if cfg.constrained else None)


def episode(domain: Domain, scenario: Scenario, fmt: AgentFormat, cfg: RolePlayConfig) -> Episode:
    return Episode(scenario, domain.env(scenario.task_id, cfg.reward_rule), fmt, max_messages=cfg.max_messages,
                   max_agent_steps=cfg.max_agent_steps, customer_acts=bool(domain.customer_tools()))
