"""One τ²-bench episode: the agent's calls run in the package's own environment (a fresh one per episode), and the
package's evaluators score the trajectory: the product of the task's reward basis (DB: the databases the ground
truth's replay leaves; ACTION: the ground truth's calls made; COMMUNICATE: its facts said). A task that needs an LLM
judge (NL_ASSERTION) is not judged here: its reward is 0 and `judged` says so, never a silent pass; evaluation's judge
(`quality/judge.py`), where one is configured, multiplies in its verdict.

Telecom's customer has a phone of its own (dual control): its calls (`user_step`) run in the same environment, and
the evaluators replay them with the agent's. A JOSH branch forks the episode: the twins share the environment until
one of them makes a call that is not a read.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from core.types import ToolCall
from envs.domain import StepResult

TERMINATE_TOOLS = ("transfer_to_human_agents",)


@dataclass(frozen=True)
class Tau2Reward:
    reward: float
    earned: tuple[bool, ...]  # per ground-truth agent action: a call with its name and arguments was made
    breakdown: dict[str, float] = field(default_factory=dict)  # DB, ACTION, COMMUNICATE (1.0 or 0.0 each)
    judged: bool = True  # False: the basis holds NL_ASSERTION, which a judge model has yet to check

    @property
    def success(self) -> bool:
        return self.reward == 1.0


def _messages():
    from tau2.data_model import message

    return message


class Tau2Env:
    def __init__(self, package, task):
        self.package, self.task = package, task
        self.env = None  # made on the first call
        self.shared = False  # the environment is also a twin's: copy before a call that may write
        self.trajectory: list = []  # tau2 messages: the agent's calls, the tools' answers, the agent's replies
        self.made: list[tuple[str, dict]] = []
        self.finished = False
        self._scored: Tau2Reward | None = None

    def _fresh(self):
        env = self.package.get_environment()
        state = self.task.initial_state
        if state is not None:
            env.set_state(initialization_data=state.initialization_data,
                          initialization_actions=state.initialization_actions,
                          message_history=state.message_history or [])
        return env

    def step(self, tool_call: ToolCall) -> StepResult:
        """Run the agent's call in τ²'s environment; its answer (or `Error: ...`) is what the agent observes."""
        result = self._run(tool_call, "assistant")
        self.made.append((tool_call.name, tool_call.arguments))
        self.finished |= tool_call.name in TERMINATE_TOOLS
        return result

    def user_step(self, tool_call: ToolCall) -> StepResult:
        """Run the customer's call on its own device (telecom); the customer alone sees the answer."""
        return self._run(tool_call, "user")

    def _run(self, tool_call: ToolCall, requestor: str) -> StepResult:
        m = _messages()
        self._scored = None
        if self.env is None:
            self.env = self._fresh()
        tools = self.env.tools if requestor == "assistant" else self.env.user_tools
        reads = tools is not None and tools.has_tool(tool_call.name) and tools.tool_type(tool_call.name).value == "read"
        if self.shared and not reads:
            self.env, self.shared = copy.deepcopy(self.env), False
        call = m.ToolCall(id=f"call_{len(self.trajectory)}", name=tool_call.name, arguments=tool_call.arguments,
                          requestor=requestor)
        answer = self.env.get_response(call)
        said = m.AssistantMessage(role="assistant", tool_calls=[call]) if requestor == "assistant" else \
            m.UserMessage(role="user", tool_calls=[call])
        self.trajectory += [said, answer]
        return StepResult(answer.content or "", not answer.error)

    def hear(self, reply: str) -> None:
        """What the agent said to the customer: COMMUNICATE looks for the task's facts there."""
        self._scored = None
        self.trajectory.append(_messages().AssistantMessage(role="assistant", content=reply))

    def reward(self) -> Tau2Reward:
        if self._scored is None:
            self._scored = score(self.package, self.task, self.trajectory, self._earned())
        return self._scored

    def _earned(self) -> tuple[bool, ...]:
        gold = [a for a in self.task.evaluation_criteria.actions or [] if a.requestor == "assistant"]
        return tuple(any(name == a.name and arguments == a.arguments for name, arguments in self.made) for a in gold)

    def fork(self) -> "Tau2Env":
        twin = copy.copy(self)
        twin.trajectory, twin.made = list(self.trajectory), list(self.made)
        self.shared = twin.shared = self.env is not None
        return twin


def score(package, task, trajectory: list, earned: tuple[bool, ...]) -> Tau2Reward:
    """τ²'s evaluators on the trajectory, multiplied over the task's reward basis (as `evaluate_simulation` does)."""
    from tau2.evaluator.evaluator_action import ActionEvaluator
    from tau2.evaluator.evaluator_communicate import CommunicateEvaluator
    from tau2.evaluator.evaluator_env import EnvironmentEvaluator

    basis = reward_basis(task.evaluation_criteria)
    parts = (({"DB", "ENV_ASSERTION"}, lambda: EnvironmentEvaluator.calculate_reward(
                 environment_constructor=package.get_environment, task=task, full_trajectory=trajectory)),
             ({"ACTION"}, lambda: ActionEvaluator.calculate_reward(task=task, full_trajectory=trajectory)),
             ({"COMMUNICATE"}, lambda: CommunicateEvaluator.calculate_reward(task=task, full_trajectory=trajectory)))
    reward, breakdown = 1.0, {}
    for bases, evaluate in parts:
        if basis & bases:
            found = evaluate()
            reward *= found.reward
            breakdown.update({k.value: v for k, v in (found.reward_breakdown or {}).items()})
    if "NL_ASSERTION" in basis:
        return Tau2Reward(0.0, earned, breakdown, judged=False)
    return Tau2Reward(reward, earned, breakdown)


def reward_basis(criteria) -> set[str]:
    """The parts of a task's reward (τ²'s RewardType values)."""
    return {b.value for b in criteria.reward_basis}
