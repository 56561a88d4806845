"""How presets + `--set key=value` overrides become a typed config, and the configs shared by several stages.

Each knob has a default and a description (so the Prefect UI renders a form with help
texts); unknown keys are errors, never silently ignored. Configs read by one part live
beside it: role-play in `roleplay/config.py`, the pipeline in `flows/pipeline_config.py`,
the embedded model's recipe in `models/bootstrap_config.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml
from pydantic import Field, ValidationError, model_validator

from core.errors import ConfigError
from core.types import StrictModel

CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"


C = TypeVar("C", bound=StrictModel)


class SamplingConfig(StrictModel):
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(128, gt=0, description="Cap on generated tokens per turn.")
    seed: int | None = Field(None, description="Sampling seed (local models; passed to APIs that accept one).")


class ModelConfig(StrictModel):
    spec: str = Field(
        "embedded",
        description="`embedded` (offline default), `smollm2` (SmolLM2-135M-Instruct from its PyPI wheel), "
                    "`hf:<hub id, local path or .gguf file>`, or `openai:<model>`.",
    )
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp); None = OpenAI.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key (never the key itself).")
    adapter: str | None = Field(None, description="Path to a LoRA adapter applied on top of an `hf:`/`embedded` model "
                                                  "(or a fully fine-tuned copy of it, which replaces its weights).")
    load_in_4bit: bool = Field(False, description="Load `hf:` weights in 4-bit NF4 via bitsandbytes.")
    batch_size: int = Field(64, gt=0, description="Sequences decoded together (local models; n samples count n times).")
    prefix_cache_mb: int = Field(
        1024, ge=0, description="Attention states of recent prompts kept for reuse by prompts extending them (local models); 0 = off."
    )
    cpu_threads: int | None = Field(
        None, gt=0, description="torch threads on CPU (local models); 1 is fastest for tiny models on a busy machine."
    )
    decode_engine: Literal["torch", "onnxruntime"] = Field(
        "torch", description="Local models on CPU: `onnxruntime` runs the batched decode steps in ONNX Runtime (2x "
                             "faster for SmolLM2; `pip install onnxruntime onnxruntime-genai onnx onnx-ir`); prompts "
                             "are still read by torch.")
    max_concurrency: int = Field(8, gt=0, description="Concurrent requests (API backends).")
    max_retries: int = Field(5, ge=0, description="Retries on 429/5xx/timeouts, with exponential backoff.")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout (API backends).")
    usd_per_million_prompt_tokens: float | None = Field(None, ge=0, description="Price, for cost reports (None = unknown).")
    usd_per_million_completion_tokens: float | None = Field(None, ge=0, description="Price, for cost reports (None = unknown).")


AGENDA, SCRIPT = "agenda", "script"  # customers without a model: role-play's and Self-talk's


class UserConfig(ModelConfig):
    """Who plays the customer: a model, or a scripted customer that needs none."""

    spec: str = Field("embedded", description=f"A model spec, or with no model `{AGENDA}` (role-play: the domain's "
                                              f"scripted customer) or `{SCRIPT}` (Self-talk: the workflow's reference answers).")

    @property
    def scripted(self) -> bool:
        return self.spec in (AGENDA, SCRIPT)


class RunnerConfig(StrictModel):
    """Where a flow's fan-out (JOSH or evaluation shards) runs: one at a time in this process, or on a Dask or Ray cluster."""

    kind: Literal["local", "dask", "ray"] = Field(
        "local", description="`local`: shards one after another here (each uses every core); `dask` / `ray`: shards in "
                             "parallel on a cluster (needs a Prefect server: PREFECT_API_URL).")
    address: str | None = Field(None, description="An existing cluster (tcp://host:8786 for Dask, ray://host:10001 for "
                                                  "Ray); None starts a local one.")
    workers: int = Field(2, gt=0, description="Worker processes of a local cluster.")


class Config(StrictModel):
    """A command's config: a section given in part keeps, for the keys it does not give, what its field's default
    sets, not its class's defaults: `--set rl.agent_sampling.max_new_tokens=12` leaves RL sampling at temperature 1.0
    and seed 0 instead of turning it greedy."""

    @model_validator(mode="before")
    @classmethod
    def _partial_sections_keep_field_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for name, field in cls.model_fields.items():
            if isinstance(data.get(name), dict) and field.default_factory is not None:
                default = field.get_default(call_default_factory=True)
                if isinstance(default, StrictModel):
                    merged[name] = _deep_merge(default.model_dump(exclude_unset=True), data[name])
        return merged


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _deep_merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


class RunFolders(Config):
    """Where a command writes its run folders. A config nested in another (a simulation's personas, a
    pipeline's stages) writes where its parent does, so its own `runs_dir` is not a knob."""

    runs_dir: str = Field("runs", description="One folder per run (a pipeline: per stage) is created under this directory.")
    SHARED: ClassVar[tuple[str, ...]] = ("runs_dir",)


class PersonaConfig(RunFolders):
    """Simulated users: draws from the attribute grid, optionally rewritten as prose by a model."""

    n: int = Field(64, gt=0, description="How many distinct personas to draw.")
    seed: int = Field(0, description="Same seed, same personas.")
    rewrite: ModelConfig | None = Field(None, description="A model that rewrites each template as persona prose (None = keep the template).")
    rewrite_sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(temperature=0.7, max_new_tokens=160, seed=0))
    near_duplicate_threshold: float = Field(
        0.9, gt=0, le=1, description="Drop a persona whose text's word-trigram Jaccard similarity to a kept one reaches this."
    )


class TrainConfig(StrictModel):
    """What SFT and preference training share: QLoRA (4-bit NF4 base, LoRA on every linear layer) via trl."""

    load_in_4bit: bool = Field(True, description="Load the base in 4-bit NF4 with double quantisation (QLoRA).")
    full_finetune: bool = Field(False, description="Train every weight instead of a LoRA (in full precision, so 4-bit is "
                                                   "off): for small models such as the embedded one. The output folder "
                                                   "then holds a whole model, used as `adapter=` all the same.")
    lora_r: int = Field(8, gt=0, description="LoRA rank (a new adapter; DPO/KTO continue the SFT adapter at its rank).")
    lora_alpha: int = Field(16, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    learning_rate: float = Field(2e-4, gt=0)
    epochs: float = Field(2.0, gt=0, description="Passes over the data (ignored when max_steps is set).")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps (None = epochs).")
    batch_size: int = Field(4, gt=0)
    grad_accum: int = Field(1, gt=0, description="Batches per optimizer step.")
    max_length: int = Field(1024, gt=0, description="Tokens per example; longer ones are cut at the end.")
    save_steps: int = Field(50, gt=0, description="Checkpoint every this many steps: an interrupted run resumes from the last.")
    logging_steps: int = Field(5, gt=0)
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory (large models on small GPUs).")
    bf16: bool | None = Field(None, description="bfloat16 compute; None = where the device has it.")
    seed: int = 0


class SFTConfig(TrainConfig):
    """Supervised fine-tuning on the kept golden paths, loss on agent turns only (JOSH: r=8, lr 2e-4, 2 epochs)."""


class PreferenceConfig(TrainConfig):
    """DPO (or KTO) on juxtaposed outcomes, from the SFT adapter with the SFT policy as reference (JOSH: lr 5e-7, beta 0.1)."""

    method: Literal["dpo", "kto"] = Field("dpo", description="`dpo` on the pairs, `kto` on the same data as labelled rows.")
    beta: float = Field(0.1, gt=0, description="How far the policy may move from the reference.")
    sft_weight: float = Field(0.0, ge=0, description="DPO only: weight of an NLL loss on the chosen turn added to the "
                                                     "preference loss (RPO), so training cannot make the chosen turn less "
                                                     "likely while it widens the margin (0 = plain DPO).")
    lora_r: int = Field(64, gt=0, description="LoRA rank when there is no SFT adapter to continue (JOSH: 64).")
    learning_rate: float = Field(5e-7, gt=0)
    epochs: float = Field(1.0, gt=0)


class CurateConfig(RunFolders):
    """Filter a simulate or import run's dialogues with expectation suites; keep what passes, with reasons for the rest."""

    source: str = Field(description="Run folder of a simulate or import-trees run (holds dialogues.jsonl, sft, dpo, kto).")
    suites: list[str] = Field(
        default_factory=lambda: ["roleplay", "josh", "batch"],
        description="Expectation suites applied in order: names in quality/suites/ or paths to YAML files.",
    )
    near_duplicate_threshold: float = Field(
        0.8, gt=0, le=1, description="Word 3-gram Jaccard similarity from which two dialogues are near duplicates."
    )
    judge: ModelConfig | None = Field(
        None, description="A model that rates persona adherence (None = a cheap proxy: share of turns in character)."
    )
    judge_sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(max_new_tokens=8))
    run_name: str | None = Field(None, description="Run folder name; default: curate-<time>.")


class SelfTalkConfig(RunFolders):
    """Self-talk on a workflow domain: a client and the agent role-play while a workflow manager steers the agent."""

    workflow: str = Field("refund_desk", description="A workflow in configs/workflows/ by name, or a path to a workflow YAML file.")
    agent: ModelConfig = Field(default_factory=ModelConfig)
    user: UserConfig = Field(default_factory=lambda: UserConfig(spec=SCRIPT),
                             description="The client: a model, or `script` (offline: the workflow's reference answers).")
    manager: ModelConfig | None = Field(
        None, description="The model the workflow manager asks which reference answer the client gave, and which runs "
                          "the start/middle/end check (None = ROUGE-L matching, no phase check).")
    agent_sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(temperature=0.7, max_new_tokens=96, seed=0))
    user_sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(temperature=0.7, max_new_tokens=64, seed=0))
    manager_sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(max_new_tokens=8))
    personas: PersonaConfig = Field(default_factory=PersonaConfig)
    n_dialogues: int = Field(40, gt=0, description="Conversations: the workflow's intentions in turn, each with the next persona.")
    max_turns: int = Field(8, gt=0, description="Agent turns per conversation (the paper: 8).")
    end_phrases: list[str] = Field(default_factory=lambda: ["goodbye", "bye", "have a nice day"],
                                   description="Words that end the conversation when either side says them.")
    subgoal_threshold: float = Field(0.33, gt=0, le=1, description="ROUGE-L from which an agent utterance completes a workflow step.")
    off_script: float = Field(0.1, ge=0, le=1, description="Scripted client: chance of an answer outside the workflow.")
    guided: bool = Field(True, description="The manager tells the agent what to say next (False: the agent follows the "
                                           "workflow in its prompt on its own, as when a trained agent is evaluated).")
    seed: int = Field(0, description="Which personas go with which intentions.")
    run_name: str | None = Field(None, description="Run folder name; default: selftalk-<time>.")

    @model_validator(mode="after")
    def _client_fits(self) -> "SelfTalkConfig":
        if self.user.spec == AGENDA:
            raise ValueError(f"user.spec={AGENDA} plays a benchmark's customers: Self-talk's client is a model or {SCRIPT}")
        return self


class ImagineConfig(RunFolders):
    """The imagination engine: personas, then imagined successes and failures, critiqued and revised, from a task description."""

    task: str = Field("Help a customer of an online shop get a refund or a replacement for a damaged or wrong item.",
                      description="What the agent is for, in free text: all the engine is given.")
    criteria: list[str] = Field(
        default_factory=lambda: ["The agent only promises what it can do and asks for what it needs.",
                                 "The user behaves like the persona and the conversation sounds real.",
                                 "The outcome (success or failure) is clear by the end."],
        description="What the critique checks each dialogue against.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The model that imagines, critiques and revises.")
    sampling: SamplingConfig = Field(default_factory=lambda: SamplingConfig(temperature=0.9, max_new_tokens=512, seed=0))
    personas: PersonaConfig = Field(default_factory=lambda: PersonaConfig(n=16))
    critique: bool = Field(True, description="Critique and revise each imagined dialogue (False: keep the drafts).")
    run_name: str | None = Field(None, description="Run folder name; default: imagine-<time>.")


def knobs(cls: type[StrictModel], prefix: str = "", default: StrictModel | None = None, skip: tuple = ()) -> list[str]:
    """Every key of a config, dotted, with its default and help text: what `--help` lists."""
    lines = []
    for name, field in cls.model_fields.items():
        if name in skip:
            continue
        key = f"{prefix}{name}"
        if field.is_required():
            lines.append(f"{key} (required)" + (f"  {field.description}" if field.description else ""))
            continue
        value = getattr(default, name) if default is not None else field.get_default(call_default_factory=True)
        if isinstance(value, StrictModel):
            lines += knobs(type(value), f"{key}.", value, getattr(cls, "SHARED", ()))
            continue
        lines.append(f"{key} = {value!r}" + (f"  {field.description}" if field.description else ""))
    return lines


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = data
    for p in parents:
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {key!r}: {p!r} is not a section")
        node = child
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`a.b=value` -> ("a.b", value); the value is read as YAML, so `3`, `true`, `null` are typed."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({e.__class__.__name__})") from None
    return key.strip(), value


def read_preset(preset: str) -> dict[str, Any]:
    """A preset is a name in configs/ or a path to a YAML file."""
    path = Path(preset)
    if not path.suffix:
        path = CONFIGS_DIR / f"{preset}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))
        raise ConfigError(f"preset {preset!r} not found (known presets: {', '.join(names)})")
    return read_yaml_mapping(path, "config keys")


def read_yaml_mapping(path: Path, holds: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping (of `holds`), or one clear error naming the file and the line."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"malformed YAML in {path}{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of {holds}, not {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each `a.b=value` override in the nested mapping `data` (in place; returned for chaining)."""
    for text in overrides:
        _set_dotted(data, *parse_override(text))
    return data


def build_config(cls: type[C], preset: str | None = None, overrides: list[str] = ()) -> C:
    data = apply_overrides(read_preset(preset) if preset else {}, overrides)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_describe(e)) from None


def _describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        key = ".".join(str(x) for x in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown config key {key!r}")
        else:
            parts.append(f"{key}: {message}" if key else message)
    return "; ".join(parts)
