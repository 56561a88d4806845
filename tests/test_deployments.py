"""prefect.yaml stays loadable and true: every deployment's entrypoint is a flow, its parameters validate,
and a deployment tagged `preset:<name>` runs exactly what `selftrain <command> --preset <name>` runs."""

from pathlib import Path

import yaml
from prefect.flows import load_flow_from_entrypoint

from core.config import build_config
from flows.pipeline_config import PipelineConfig

ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENTS = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


def _flow(deployment):
    return load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))


def test_every_deployment_points_at_a_flow_with_valid_parameters():
    assert {"pipeline-embedded", "pipeline-retail", "evaluate-embedded", "bootstrap-embedded", "personas", "simulate-embedded", "import-trees",
            "curate", "sft", "preference", "rl-embedded", "selftalk", "imagine"} == {d["name"] for d in DEPLOYMENTS}
    for deployment in DEPLOYMENTS:
        flow, given = _flow(deployment), deployment.get("parameters", {})
        required = set(flow.parameters.required or ())
        assert set(given) <= set(flow.parameters.properties), deployment["name"]
        if required <= set(given):
            assert set(flow.validate_parameters(given)) >= set(given), deployment["name"]


def test_a_preset_tagged_deployment_runs_what_the_cli_runs_with_that_preset():
    tagged = [(d, t.removeprefix("preset:")) for d in DEPLOYMENTS for t in d.get("tags", []) if t.startswith("preset:")]
    assert {d["name"] for d, _ in tagged} == {"pipeline-embedded", "pipeline-retail", "evaluate-embedded", "simulate-embedded",
                                              "rl-embedded"}
    for deployment, preset in tagged:
        cfg = _flow(deployment).validate_parameters(deployment["parameters"])["cfg"]
        assert cfg == build_config(type(cfg), preset), deployment["name"]
    pipeline = build_config(PipelineConfig, "pipeline")
    for deployment in (d for d in DEPLOYMENTS if d["name"] in ("sft", "preference")):
        stage = getattr(pipeline, deployment["name"])
        assert type(stage).model_validate(deployment["parameters"]["cfg"]) == stage  # the pipeline's training settings


def test_the_whole_pipeline_runs_nightly():
    (pipeline,) = [d for d in DEPLOYMENTS if d["name"] == "pipeline-embedded"]
    assert [s["cron"] for s in pipeline["schedules"] if s["active"]] == ["0 3 * * *"]
