"""Who plays the customer: a chat model prompted with its goal, or the agenda user (the domain's scripted customer,
no model behind it: ToolWOZ's goal agenda, or on tau-bench the task's instruction told a sentence per turn).

Both answer a batch of conversations at once, so the rollout and JOSH step every customer
in one call. `agenda` is a user spec like a model spec (`--set user.spec=agenda`), but it is
no model: it cannot play the agent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from core.config import AGENDA, SamplingConfig, UserConfig
from roleplay.config import RolePlayConfig
from core.errors import ConfigError
from core.fingerprint import stable_hash
from core.types import Generation, Message, Scenario
from envs.domain import ScriptedCustomer
from envs.registry import DOMAINS, benchmark_domain, domain
from formats import user_sim
from models.base import ChatModel
from models.loading import check_model, load_model, loaded_pair
from models.specs import model_fingerprint

Conversation = tuple[Scenario, Sequence[Message]]  # the scenario and what the customer has seen so far


class UserSimulator(ABC):
    spec: str

    @abstractmethod
    def respond(self, conversations: Sequence[Conversation], sampling: SamplingConfig) -> list[Generation]:
        """The customer's next message in each conversation, same order."""


class ModelUser(UserSimulator):
    """A chat model playing the customer, prompted with the scenario's goal (`customer_view`)."""

    def __init__(self, model: ChatModel):
        self.model, self.spec = model, model.spec

    def respond(self, conversations: Sequence[Conversation], sampling: SamplingConfig) -> list[Generation]:
        prompts = [customer_view(scenario, list(visible), self.spec) for scenario, visible in conversations]
        return [gens[0] for gens in self.model.generate(prompts, sampling)]


class AgendaUser(UserSimulator):
    """The domain's customer without a model (ToolWOZ: the goal agenda, its phrasing seeded by the sampling seed;
    tau-bench: the instruction told a sentence per turn)."""

    spec = AGENDA

    def __init__(self, max_messages: int = 15):
        self.max_messages = max_messages
        self.customers: dict[str, ScriptedCustomer] = {}

    def respond(self, conversations: Sequence[Conversation], sampling: SamplingConfig) -> list[Generation]:
        return [Generation(self._customer(scenario.domain).turn(scenario, visible, sampling.seed or 0),
                           prompt_tokens=0, completion_tokens=0) for scenario, visible in conversations]

    def _customer(self, name: str) -> ScriptedCustomer:
        if name not in self.customers:
            benchmark = benchmark_domain(name)
            found = benchmark.scripted_customer(self.max_messages) if benchmark else None
            if found is None:
                raise ConfigError(f"the agenda user plays the customers of {', '.join(DOMAINS)}, not {name!r} scenarios")
            self.customers[name] = found
        return self.customers[name]


def customer_view(scenario: Scenario, visible: list[Message], model_spec: str) -> list[Message]:
    """What a model customer is prompted with: its domain's prompt (tau-bench: the instruction prompt), except that
    the embedded model always gets the goal prompt, the only customer prompt it was trained on."""
    if model_spec == "embedded":
        return user_sim.user_view(scenario, visible, domain(scenario.domain).agent_title)
    return domain(scenario.domain).customer_view(scenario, visible)


def ends_conversation(text: str, scenario: Scenario) -> bool:
    """The customer hung up: END_CONVERSATION (the goal prompt's) or its domain's marker (tau-bench's `###STOP###`)."""
    return user_sim.wants_to_end(text) or domain(scenario.domain).stop_marker in text


def as_user(player: ChatModel | UserSimulator) -> UserSimulator:
    """A chat model given where a customer is expected plays it through the goal prompt."""
    return ModelUser(player) if isinstance(player, ChatModel) else player


def check_user(cfg: UserConfig) -> None:
    """Fail fast on a user spec that cannot work (the agenda user always can)."""
    if not cfg.scripted:
        check_model(cfg)


def user_fingerprint(cfg: UserConfig) -> str:
    """The agenda user's behaviour is its code, which every simulation cache key already hashes (its import closure)."""
    return stable_hash(cfg.spec) if cfg.scripted else model_fingerprint(cfg)


@contextmanager
def loaded_user(cfg: UserConfig, max_messages: int) -> Iterator[UserSimulator]:
    """The customer on its own (never sharing the agent's weights: online RL changes those); freed afterwards."""
    if cfg.scripted:
        yield AgendaUser(max_messages)
        return
    model = load_model(cfg)
    try:
        yield ModelUser(model)
    finally:
        model.close()


@contextmanager
def loaded_roles(cfg: RolePlayConfig) -> Iterator[tuple[ChatModel, UserSimulator]]:
    """The agent model and the customer; one model plays both when their configs are the same."""
    if not cfg.user.scripted:
        with loaded_pair(cfg.agent, cfg.user) as (agent, user):
            yield agent, ModelUser(user)
        return
    agent = load_model(cfg.agent)
    try:
        yield agent, AgendaUser(cfg.max_messages)
    finally:
        agent.close()
