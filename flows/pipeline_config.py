"""The pipeline's config: every stage's settings, with the agent, the customer and the runs folder set once.

Apart from `flows/pipeline.py` so that the command line reads it without importing Prefect.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from core.config import AGENDA, ImagineConfig, ModelConfig, PreferenceConfig, RunFolders, SelfTalkConfig, SFTConfig, UserConfig
from roleplay.config import EvalConfig, RLConfig, SimulateConfig


class PipelineConfig(RunFolders):
    """Self-training end to end: simulate (or import josh-train's trees) -> curate -> SFT -> DPO -> evaluate
    base, SFT and DPO on the same held-out tasks and seeds."""

    source: Literal["simulate", "josh-trees", "selftalk", "imagine"] = Field(
        "simulate", description="`simulate`: JOSH with the base agent; `josh-trees`: josh-train's shipped Llama-3 trees; "
                                "`selftalk`: Self-talk on a workflow (evaluated by unguided self-talk, other persona pairings); "
                                "`imagine`: the imagination engine on a task description (no environment: not evaluated).")
    agent: ModelConfig = Field(default_factory=ModelConfig, description="The base model: simulates, is trained, is evaluated.")
    user: UserConfig = Field(default_factory=lambda: UserConfig(spec=AGENDA), description="Who plays the customer.")
    simulate: SimulateConfig = Field(default_factory=SimulateConfig, description="JOSH settings (its agent/user are the above).")
    selftalk: SelfTalkConfig = Field(default_factory=SelfTalkConfig, description="Self-talk settings (its agent/user are the above).")
    imagine: ImagineConfig = Field(default_factory=ImagineConfig, description="Imagination engine settings (its own model).")
    suites: list[str] = Field(default_factory=lambda: ["roleplay", "josh", "batch"], description="Curation suites, in order.")
    sft: SFTConfig = Field(default_factory=SFTConfig)
    preference: PreferenceConfig = Field(default_factory=PreferenceConfig)
    rl: RLConfig = Field(default_factory=RLConfig, description="Online RL settings, used with preference.method=grpo "
                                                                "(its agent/user are the above; it starts from the SFT adapter).")
    evaluation: EvalConfig = Field(default_factory=EvalConfig, description="Held-out tasks and seeds (its agent/user are the above).")
    rounds: int = Field(1, ge=1, description="Rounds of self-training (source=simulate): round k runs JOSH with round k-1's "
                                             "model on simulate.n_tasks new training tasks, curates, trains SFT and the "
                                             "preference step from the base on everything kept so far; base and each "
                                             "round's model are evaluated (1: base, SFT and the preference step).")
    SHARED: ClassVar[tuple[str, ...]] = ("agent", "user", "runs_dir")  # set here once for every stage

    @model_validator(mode="after")
    def _roles_set_once(self) -> "PipelineConfig":
        for stage in ("simulate", "selftalk", "rl", "evaluation"):
            for role in ("agent", "user"):
                if getattr(self, stage).model_fields_set & {role}:
                    raise ValueError(f"set {role}.* at the top level, not {stage}.{role}: every stage uses the same {role}")
        if self.rounds > 1 and self.source != "simulate":
            raise ValueError(f"rounds={self.rounds} needs source=simulate: only JOSH makes new data with each round's model")
        if self.source == "josh-trees" and self.simulate.benchmark != "toolwoz":
            raise ValueError("josh-train's shipped trees are ToolWOZ dialogues: source=josh-trees needs simulate.benchmark=toolwoz")
        if self.source == "selftalk" and self.user.spec == AGENDA:
            raise ValueError("the agenda user plays benchmark customers: for source=selftalk set user.spec=script "
                             "(the workflow's scripted client) or a model")
        if self.source == "simulate" and self.simulate.benchmark != self.evaluation.benchmark:
            raise ValueError(f"simulate.benchmark ({self.simulate.benchmark}) and evaluation.benchmark "
                             f"({self.evaluation.benchmark}) differ: the agent is evaluated where it was trained")
        if self.preference.method == "grpo" and (self.source not in ("simulate", "josh-trees")
                                                 or self.rl.benchmark != self.evaluation.benchmark):
            raise ValueError("preference.method=grpo trains against the evaluation benchmark's customer and tools: it needs "
                             "source=simulate or josh-trees, and rl.benchmark equal to evaluation.benchmark")
        if (self.rl.agent_format, self.rl.agent_prompt) != (self.evaluation.agent_format, self.evaluation.agent_prompt):
            raise ValueError("rl.agent_format/agent_prompt differ from evaluation's: the agent is trained and evaluated in one format")
        if self.simulate.agent_format != self.evaluation.agent_format:
            raise ValueError(f"simulate.agent_format ({self.simulate.agent_format}) and evaluation.agent_format "
                             f"({self.evaluation.agent_format}) differ: the agent is trained and evaluated in one format")
        if self.simulate.agent_prompt != self.evaluation.agent_prompt:
            raise ValueError(f"simulate.agent_prompt ({self.simulate.agent_prompt}) and evaluation.agent_prompt "
                             f"({self.evaluation.agent_prompt}) differ: the agent is trained and evaluated in one format")
        return self

    def stage(self, name: str, **updates):
        """The config one stage runs with: the shared agent, user and runs folder filled in."""
        cfg = getattr(self, name)
        return cfg.model_copy(update={"agent": self.agent, "user": self.user, "runs_dir": self.runs_dir, **updates})
