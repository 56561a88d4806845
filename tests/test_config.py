"""Configs: presets + overrides become one typed config, and bad input names the problem."""

import pytest

from core.config import build_config
from roleplay.config import EvalConfig
from core.errors import ConfigError


def test_overrides_are_typed_and_nested():
    cfg = build_config(EvalConfig, "embedded", ["n_tasks=3", "agent.spec=openai:gpt-4o-mini", "agent_sampling.temperature=0.7"])
    assert cfg.n_tasks == 3 and cfg.agent.spec == "openai:gpt-4o-mini" and cfg.agent_sampling.temperature == 0.7
    assert cfg.user.spec == "agenda"  # the preset's customer, untouched by the agent override


@pytest.mark.parametrize("override, message", [
    ("bogus=1", "unknown config key 'bogus'"),
    ("agent.flavour=x", "unknown config key 'agent.flavour'"),
    ("n_tasks=many", "n_tasks"),
    ("split=dev", "split"),
    ("no_equals_sign", "key=value"),
])
def test_bad_overrides_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        build_config(EvalConfig, "embedded", [override])


def test_malformed_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent:\n  spec: embedded\n n_tasks: [1, 2\n")
    with pytest.raises(ConfigError, match=r"malformed YAML in .*bad.yaml at line \d+"):
        build_config(EvalConfig, str(bad))


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known presets: .*embedded"):
        build_config(EvalConfig, "nope")


def test_a_section_given_in_part_keeps_its_fields_defaults_for_the_rest():
    """RL samples at temperature 1.0 (its field's default, not SamplingConfig's greedy 0.0): changing only the
    token cap must not turn every group's dialogues into copies of one another."""
    from flows.pipeline_config import PipelineConfig
    from roleplay.config import RLConfig

    rl = build_config(RLConfig, None, ["agent_sampling.max_new_tokens=12"]).agent_sampling
    assert (rl.temperature, rl.seed, rl.max_new_tokens) == (1.0, 0, 12)
    nested = build_config(PipelineConfig, "pipeline", ["rl.agent_sampling.max_new_tokens=12", "evaluation.user_sampling.seed=3"])
    assert (nested.rl.agent_sampling.temperature, nested.rl.agent_sampling.max_new_tokens) == (1.0, 12)
    assert (nested.evaluation.user_sampling.max_new_tokens, nested.evaluation.user_sampling.seed) == (64, 3)
