"""A Self-talk workflow: numbered agent steps, each with reference client answers leading to the next step.

A workflow file (YAML, see `configs/workflows/`) names the agent's character and persona,
what clients come for, and the steps. Parsed into a directed graph and checked before any
model runs: every `next` names a step (or `end`), every step is reachable from the first, and
every step can still reach an end (a cycle without exit would trap the conversation).
Plain Python: no Prefect, no models.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.config import read_yaml_mapping
from core.errors import ConfigError

END = "end"
WORKFLOWS_DIR = Path(__file__).resolve().parents[2] / "configs" / "workflows"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Answer(Strict):
    """A reference client answer to a step, and the step it leads to (`end` closes the conversation)."""

    answer: str = Field(min_length=1)
    next: int | str

    @field_validator("next")
    @classmethod
    def _step_or_end(cls, value: int | str) -> int | str:
        if isinstance(value, str) and value != END:
            raise ValueError(f"must be a step number or {END!r}, not {value!r}")
        return value


class Step(Strict):
    """What the agent must say at this step; a step without answers ends the conversation after it is said."""

    say: str = Field(min_length=1)
    answers: tuple[Answer, ...] = ()


class Agent(Strict):
    character: str = Field(min_length=1, description="Who the agent is, e.g. 'You are Sam, a support agent at ...'.")
    persona: str = Field("", description="How the agent behaves: tone, manner.")


class Workflow(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1, description="The task, in a sentence: what clients come for.")
    agent: Agent
    intentions: tuple[str, ...] = Field(min_length=1, description="What a client wants; one scenario each.")
    steps: dict[int, Step] = Field(min_length=1)

    @property
    def first(self) -> int:
        return min(self.steps)

    def edges(self, step: int) -> tuple[Answer, ...]:
        return self.steps[step].answers

    @cached_property
    def longest_path(self) -> int:
        """Steps on the longest path from the first step to an end without revisiting a step: relative depth's denominator."""

        def longest(step: int, seen: frozenset[int]) -> int:
            nexts = [a.next for a in self.edges(step) if a.next != END and a.next not in seen]
            return 1 + max((longest(n, seen | {n}) for n in nexts), default=0)

        return longest(self.first, frozenset({self.first}))

    def problems(self) -> list[str]:
        """What makes the graph unusable, one sentence per problem (empty: the workflow is sound)."""
        out = [f"step {s}, answer {i}: next step {a.next} does not exist"
               for s, step in self.steps.items() for i, a in enumerate(step.answers, 1)
               if a.next != END and a.next not in self.steps]
        if out:
            return out
        reachable, stack = {self.first}, [self.first]
        while stack:
            for a in self.edges(stack.pop()):
                if a.next != END and a.next not in reachable:
                    reachable.add(a.next)
                    stack.append(a.next)
        out += [f"step {s} cannot be reached from step {self.first}" for s in sorted(set(self.steps) - reachable)]
        exits = {s for s, step in self.steps.items() if not step.answers or any(a.next == END for a in step.answers)}
        changed = True
        while changed:
            more = {s for s in self.steps if s not in exits and any(a.next in exits for a in self.edges(s))}
            exits |= more
            changed = bool(more)
        trapped = sorted(reachable - exits)
        if trapped:
            out.append(f"steps {trapped} loop without an exit: no answer path from them reaches an end")
        return out


def load_workflow(name_or_path: str) -> Workflow:
    """A shipped workflow by name (configs/workflows/<name>.yaml) or any YAML file; one clear error if it is unusable."""
    path = Path(name_or_path)
    if not path.suffix:
        path = WORKFLOWS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in WORKFLOWS_DIR.glob("*.yaml")))
        raise ConfigError(f"no workflow file {path} (shipped workflows: {shipped})")
    try:
        workflow = Workflow.model_validate(read_yaml_mapping(path, "workflow keys"))
    except ValidationError as e:
        raise ConfigError(f"{path}: " + "; ".join(
            f"{'.'.join(map(str, err['loc']))}: "
            + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, "))
            for err in e.errors())) from None
    problems = workflow.problems()
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return workflow
