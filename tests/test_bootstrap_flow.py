"""The bootstrap flow on a real Prefect server: trains (a few steps here) apart from the stages, reports, reuses its model."""

from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from envs.toolwoz.data import _cache_path as toolwoz_task_file, load_toolwoz
from flows.bootstrap import bootstrap
from tasks.bootstrap import build_toolwoz_tasks
from models.bootstrap_config import BootstrapConfig

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


def test_the_first_parse_of_toolwoz_happens_apart_and_leaves_only_its_file(tmp_path, monkeypatch):
    """Parsing MultiWOZ's raw JSON grows a process by ~1 GiB it cannot give back: the stages never carry it."""
    monkeypatch.setenv("SELFTRAIN_CACHE_DIR", str(tmp_path))
    assert not toolwoz_task_file().is_file()
    parsed_here, held = load_toolwoz.cache_info().misses, _resident_gib()
    build_toolwoz_tasks()
    assert toolwoz_task_file().is_file() and toolwoz_task_file().is_relative_to(tmp_path)
    assert load_toolwoz.cache_info().misses == parsed_here and _resident_gib() - held < 0.3


def _resident_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**30
