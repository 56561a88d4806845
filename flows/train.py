"""Train adapters on a curated run: SFT on the kept golden paths, then DPO (or KTO) on the kept pairs.

base + curated sft rows -> SFT adapter (cached) ; SFT adapter + curated pairs -> DPO / KTO adapter (cached)
"""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel

from core.config import ModelConfig, PreferenceConfig, SFTConfig
from models.training import ADAPTER
from tasks.training import adapter_dir, adapter_fingerprint, data_fingerprint, publish_training_report, train_adapter


class Adapter(BaseModel):
    kind: str
    path: str  # the folder to pass as `adapter=` (a LoRA adapter, or a whole model after full fine-tuning)
    fingerprint: str
    rows: int
    steps: int
    cached: bool


def _train(kind: str, base: ModelConfig, data_dir: str, cfg, parent: Adapter | None = None) -> Adapter:
    fingerprint = adapter_fingerprint(kind, base, data_fingerprint(data_dir), cfg, parent.fingerprint if parent else None)
    report, found = train_adapter(kind, base, data_dir, cfg, fingerprint, parent.path if parent else None)
    out = adapter_dir(kind, fingerprint)
    publish_training_report(report, out)
    return Adapter(kind=kind, path=str(out / ADAPTER), fingerprint=fingerprint, rows=report.rows, steps=report.steps,
                   cached=found)


@flow(name="sft")
def sft(cfg: SFTConfig, base: ModelConfig, data_dir: str) -> Adapter:
    return _train("sft", base, data_dir, cfg)


@flow(name="preference")
def preference(cfg: PreferenceConfig, base: ModelConfig, data_dir: str, sft_adapter: Adapter | None = None) -> Adapter:
    return _train(cfg.method, base, data_dir, cfg, sft_adapter)
