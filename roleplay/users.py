"""Who plays the customer: a chat model prompted with its goal, or the agenda user (scripted, no model behind it:
ToolWOZ's goal agenda, or on tau-bench the task's instruction told a sentence per turn).

Both answer a batch of conversations at once, so the rollout and JOSH step every customer
in one call. `agenda` is a user spec like a model spec (`--set user.spec=agenda`), but it is
no model: it cannot play the agent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from core.config import ModelConfig, RolePlayConfig, SamplingConfig
from core.errors import ConfigError
from core.fingerprint import stable_hash
from core.types import Message, Scenario
from envs.taubench import user as tau_user
from envs.taubench.data import SPLITS as TAU_SPLITS
from core.types import Generation
from models.base import ChatModel
from models.loading import check_model, load_model, loaded_pair
from models.specs import model_fingerprint
from formats import user_sim

AGENDA = "agenda"
TAU_DOMAINS = tuple(TAU_SPLITS)
Conversation = tuple[Scenario, Sequence[Message]]  # the scenario and what the customer has seen so far


class UserSimulator(ABC):
    spec: str

    @abstractmethod
    def respond(self, conversations: Sequence[Conversation], sampling: SamplingConfig) -> list[Generation]:
        """The customer's next message in each conversation, same order."""


class ModelUser(UserSimulator):
    """A chat model playing the customer, prompted with the scenario's goal (`tasks/user_sim.py`)."""

    def __init__(self, model: ChatModel):
        self.model, self.spec = model, model.spec

    def respond(self, conversations: Sequence[Conversation], sampling: SamplingConfig) -> list[Generation]:
        prompts = [customer_view(scenario, list(visible), self.spec) for scenario, visible in conversations]
        return [gens[0] for gens in self.model.generate(prompts, sampling)]


class AgendaUser(UserSimulator):
    """The goal-agenda customer of `envs/toolwoz/agenda.py` (its phrasing seeded by the sampling seed); on tau-bench
    tasks, the instruction's agenda of `envs/taubench/user.py`."""

    spec = AGENDA

    def __init__(self, max_messages: int = 15):
        from envs.toolwoz.data import load_toolwoz
        from envs.toolwoz.agenda import Catalog

        self.data = load_toolwoz()
        self.catalog = Catalog(self.data)
        self.max_turns = (max_messages + 1) // 2  # the customer speaks while fewer than max_messages are visible

    def respond(self, conversations: Sequence[Conversation], sampling: SamplingConfig) -> list[Generation]:
        from envs.toolwoz.agenda import customer_turn

        out = []
        for scenario, visible in conversations:
            if scenario.domain in TAU_DOMAINS:
                turn = tau_user.scripted_turn(scenario.instruction, sum(m.role == "user" for m in visible))
                out.append(Generation(turn, prompt_tokens=0, completion_tokens=0))
                continue
            if scenario.domain != "toolwoz":
                raise ConfigError(f"the agenda user plays ToolWOZ and tau-bench customers, not {scenario.domain!r} scenarios")
            said = [m.content for m in visible if m.role == "assistant"]
            turn = customer_turn(self.catalog, self.data.tasks[scenario.task_id], scenario.persona, sampling.seed or 0,
                                 said, self.max_turns)
            out.append(Generation(turn.text, prompt_tokens=0, completion_tokens=0))
        return out


def customer_view(scenario: Scenario, visible: list[Message], model_spec: str) -> list[Message]:
    """What a model customer is prompted with: tau-bench's instruction prompt on its tasks, else the goal prompt.
    The embedded model always gets the goal prompt: the only customer prompt it was trained on."""
    tau = scenario.domain in TAU_DOMAINS and model_spec != "embedded"
    return (tau_user.user_view if tau else user_sim.user_view)(scenario, visible)


def ends_conversation(text: str) -> bool:
    """The customer hung up (`###STOP###`, tau-bench's marker, or END_CONVERSATION, the goal prompt's)."""
    return tau_user.wants_to_end(text) or user_sim.wants_to_end(text)


def as_user(player: ChatModel | UserSimulator) -> UserSimulator:
    """A chat model given where a customer is expected plays it through the goal prompt."""
    return ModelUser(player) if isinstance(player, ChatModel) else player


def check_user(cfg: ModelConfig) -> None:
    """Fail fast on a user spec that cannot work (the agenda user always can)."""
    if cfg.spec != AGENDA:
        check_model(cfg)


def user_fingerprint(cfg: ModelConfig) -> str:
    """The agenda user's behaviour is its code, which every simulation cache key already hashes (envs/toolwoz)."""
    return stable_hash(AGENDA) if cfg.spec == AGENDA else model_fingerprint(cfg)


@contextmanager
def loaded_roles(cfg: RolePlayConfig) -> Iterator[tuple[ChatModel, UserSimulator]]:
    """The agent model and the customer; one model plays both when their configs are the same."""
    if cfg.user.spec != AGENDA:
        with loaded_pair(cfg.agent, cfg.user) as (agent, user):
            yield agent, ModelUser(user)
        return
    agent = load_model(cfg.agent)
    try:
        yield agent, AgendaUser(cfg.max_messages)
    finally:
        agent.close()
