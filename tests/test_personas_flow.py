"""The personas flow on a real Prefect server: draws, a model rewrite, the diversity table, the dataset."""

import json

import datasets
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from core.config import PersonaConfig, build_config
from flows.personas import personas
from models.embedded import build_random_model
from roleplay.personas import render


def test_personas_are_rewritten_deduplicated_measured_and_saved(prefect_server, tmp_path):
    model = build_random_model(tmp_path / "model")
    cfg = build_config(PersonaConfig, None, ["n=12", f"runs_dir={tmp_path}", f"rewrite.spec=hf:{model}",
                                            "rewrite_sampling.max_new_tokens=24"])
    kept = personas(cfg)
    assert 0 < len(kept) <= 12
    assert all(p.text != render(p.attributes) for p in kept)  # the model's prose replaced the template
    (run,) = tmp_path.glob("personas-*")
    saved = datasets.load_from_disk(str(run / "personas"))
    assert saved["id"] == [p.id for p in kept] and json.loads(saved["attributes"][0]) == kept[0].attributes
    stats = json.loads((run / "diversity.json").read_text())
    assert stats["personas"] == len(kept) and stats["near_duplicates_dropped"] == 12 - len(kept)
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["persona-diversity"])))
    assert found
