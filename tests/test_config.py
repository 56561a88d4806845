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
