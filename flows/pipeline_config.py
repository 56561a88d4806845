"""The pipeline's config: every stage's settings, with the agent, the customer and the runs folder set once.

Apart from `flows/pipeline.py` so that the command line reads it without importing Prefect.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from core.config import AGENDA, ImagineConfig, ModelConfig, PreferenceConfig, RunFolders, SelfTalkConfig, SFTConfig, UserConfig
from roleplay.config import (AgentFormatName, AgentPrompt, Benchmark, EvalConfig, RewardRule, RLConfig, SimulateConfig,
                             check_reward_rule)


class PipelineConfig(RunFolders):
    """Self-training end to end: simulate (or import josh-train's trees) -> curate -> SFT -> DPO (or online RL) ->
    evaluate base and each trained model on the same held-out tasks and seeds."""

    source: Literal["simulate", "josh-trees", "selftalk", "imagine"] = Field(
        "simulate", description="`simulate`: JOSH with the base agent; `josh-trees`: josh-train's shipped Llama-3 trees; "
                                "`selftalk`: Self-talk on a workflow (evaluated by unguided self-talk, other persona pairings); "
                                "`imagine`: the imagination engine on a task description (no environment: not evaluated).")
    agent: ModelConfig = Field(default_factory=ModelConfig, description="The base model: simulates, is trained, is evaluated.")
    user: UserConfig = Field(default_factory=lambda: UserConfig(spec=AGENDA), description="Who plays the customer.")
    benchmark: Benchmark = "toolwoz"
    agent_format: AgentFormatName = "react"
    agent_prompt: AgentPrompt = "compact"
    reward_rule: RewardRule = None
    simulate: SimulateConfig = Field(default_factory=SimulateConfig, description="JOSH settings.")
    selftalk: SelfTalkConfig = Field(default_factory=SelfTalkConfig, description="Self-talk settings.")
    imagine: ImagineConfig = Field(default_factory=ImagineConfig, description="Imagination engine settings (its own model).")
    suites: list[str] = Field(default_factory=lambda: ["roleplay", "josh", "batch"], description="Curation suites, in order.")
    sft: SFTConfig = Field(default_factory=SFTConfig)
    preference: PreferenceConfig = Field(default_factory=PreferenceConfig, description="The step after SFT (unless online_rl).")
    online_rl: bool = Field(False, description="After SFT, online RL (GRPO, settings `rl.*`) against the customer and the "
                                               "tools, instead of the preference step (source=simulate or josh-trees).")
    rl: RLConfig = Field(default_factory=RLConfig, description="Online RL settings, used with online_rl=true (it starts "
                                                                "from the SFT model).")
    evaluation: EvalConfig = Field(default_factory=EvalConfig, description="Held-out tasks and seeds.")
    rounds: int = Field(1, ge=1, description="Rounds of self-training (source=simulate): round k runs JOSH with round k-1's "
                                             "model on simulate.n_tasks new training tasks, curates, trains SFT and the "
                                             "preference step from the base on everything kept so far; base and each "
                                             "round's model are evaluated (1: base, SFT and the preference step).")
    # set here once for every stage (a stage's own copy is neither listed nor settable)
    SHARED: ClassVar[tuple[str, ...]] = ("agent", "user", "runs_dir", "benchmark", "agent_format", "agent_prompt",
                                         "reward_rule")

    @model_validator(mode="after")
    def _shared_set_once(self) -> "PipelineConfig":
        for stage in ("simulate", "selftalk", "rl", "evaluation"):
            for key in getattr(self, stage).model_fields_set & set(self.SHARED):
                raise ValueError(f"set {key} at the top level, not {stage}.{key}: every stage uses the same {key}")
        check_reward_rule(self.benchmark, self.reward_rule)
        if self.rounds > 1 and self.source != "simulate":
            raise ValueError(f"rounds={self.rounds} needs source=simulate: only JOSH makes new data with each round's model")
        if self.source == "josh-trees" and self.benchmark != "toolwoz":
            raise ValueError("josh-train's shipped trees are ToolWOZ dialogues: source=josh-trees needs benchmark=toolwoz")
        if self.source == "selftalk" and self.user.spec == AGENDA:
            raise ValueError("the agenda user plays benchmark customers: for source=selftalk set user.spec=script "
                             "(the workflow's scripted client) or a model")
        if self.online_rl and self.source not in ("simulate", "josh-trees"):
            raise ValueError("online_rl=true trains against the benchmark's customer and tools: it needs source=simulate "
                             "or josh-trees")
        return self

    def stage(self, name: str, **updates):
        """The config one stage runs with: the shared settings it has filled in."""
        cfg = getattr(self, name)
        shared = {key: getattr(self, key) for key in self.SHARED if key in type(cfg).model_fields}
        return cfg.model_copy(update={**shared, **updates})
