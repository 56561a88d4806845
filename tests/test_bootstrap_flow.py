"""The bootstrap flow on a real Prefect server: trains (a few steps here), reports, reuses its model."""

from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from models.bootstrap_config import BootstrapConfig
from flows.bootstrap import bootstrap

FEW_STEPS = BootstrapConfig(max_steps=3, max_dialogues=6, vocab_size=512, hidden=128, layers=2, heads=2,
                            intermediate=256, block_size=384)


def test_bootstrap_trains_reports_and_reuses_the_model(prefect_server):
    model_dir = Path(bootstrap(FEW_STEPS))
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "tokenizer.json").is_file()
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["embedded-model"])))
    assert "steps: 3" in artifact.data and "dialogues: 6" in artifact.data
    stamp = (model_dir / "model.safetensors").stat().st_mtime_ns
    assert bootstrap(FEW_STEPS) == str(model_dir)
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == stamp
