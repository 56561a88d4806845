"""prefect.yaml stays loadable: every deployment's entrypoint is a flow and its parameters validate."""

from pathlib import Path

import yaml
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[1]


def test_every_deployment_points_at_a_flow_with_valid_parameters(monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert spec["deployments"]
    for deployment in spec["deployments"]:
        flow = load_flow_from_entrypoint(deployment["entrypoint"])
        validated = flow.validate_parameters(deployment.get("parameters", {}))
        assert set(validated) == set(deployment.get("parameters", {})), deployment["name"]
