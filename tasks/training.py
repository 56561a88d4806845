"""Prefect tasks of the training flows: a cached adapter per (base, data, config, code), and its report.

An adapter lives under the cache dir in a folder named by its fingerprint: the same base, the
same rows, the same settings and the same training code give the same folder, so a rerun is
free. The folder is the cache (no Prefect result points to it); a run killed half way left
checkpoints in its dot-named build folder, and starting it again resumes from them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact

from core.config import ModelConfig, PreferenceConfig, SFTConfig
from core.fingerprint import code_fingerprint, stable_hash
from core import records
from core.cache import build_once
from core.memory import release
from core.paths import cache_dir
from models.specs import model_fingerprint, weights_source
from models.training import ADAPTER, TrainReport, train_preferences, train_sft, trained


def data_fingerprint(data_dir: str) -> str:
    """Content hash of a training dataset's rows (not its files: a re-saved copy hashes the same)."""
    return stable_hash(records.load_dataset(data_dir).to_list())


@task
def kept_so_far(curated_runs: list[Path], name: str) -> Path:
    """One training set (`sft`, `dpo`, `kto`) of every curated run so far: the run's own folder when there is one,
    else the rows put together in a folder under the cache named by their content."""
    parts = [run / name for run in curated_runs if (run / name).is_dir()]
    if len(parts) <= 1:
        return parts[0] if parts else curated_runs[-1] / name
    rows = datasets.concatenate_datasets([records.load_dataset(p) for p in parts])
    out = cache_dir() / "datasets" / f"{name}-{stable_hash(rows.to_list())[:12]}"
    return build_once(out, lambda folder: rows.save_to_disk(str(folder), num_shards=1))


def adapter_fingerprint(kind: str, base: ModelConfig, data_fp: str, cfg: SFTConfig | PreferenceConfig,
                        parent: str | None = None) -> str:
    return stable_hash(kind, model_fingerprint(base.model_copy(update={"adapter": None})), data_fp, cfg, parent,
                       code_fingerprint(__name__))


def adapter_dir(kind: str, fingerprint: str) -> Path:
    return cache_dir() / "adapters" / f"{kind}-{fingerprint[:12]}"


def _progress_reporter(kind: str):
    artifact = create_progress_artifact(0.0, key=f"{kind}-progress", description=f"{kind.upper()} training steps (%)")
    logger = get_run_logger()

    def report(step: int, total: int, loss: float, seconds_left: float) -> None:
        update_progress_artifact(artifact, 100.0 * step / max(total, 1))
        logger.info("%s step %d/%d, loss %.4f, about %.0f s left", kind, step, total, loss, seconds_left)
    return report


@task(task_run_name="train-{kind}", persist_result=False)
def train_adapter(kind: str, base: ModelConfig, data_dir: str, cfg: SFTConfig | PreferenceConfig, fingerprint: str,
                  sft_adapter: str | None = None) -> tuple[TrainReport, bool]:
    """The adapter's folder (`adapter/` and `training.json`), trained, resumed or found; and whether it was found.
    The folder is the cache: a pruned one is trained again."""
    out = adapter_dir(kind, fingerprint)
    if out.is_dir() and trained(out) is None:  # left unfinished by a version that trained under the final name
        shutil.rmtree(out)
    found = out.is_dir()

    def train(folder: Path) -> None:
        data, data_fp, report = records.load_dataset(data_dir), data_fingerprint(data_dir), _progress_reporter(kind)
        try:
            if kind == "sft":
                train_sft(weights_source(base), data, data_fp, cfg, folder, report)
            else:
                train_preferences(weights_source(base), Path(sft_adapter) if sft_adapter else None, data, data_fp,
                                  cfg, folder, report)
        finally:
            release()  # the model, its reference copy and the optimizer

    build_once(out, train, resumable=True)
    return trained(out), found


@task
def publish_training_report(report: TrainReport, out: Path) -> str:
    curve = ", ".join(f"{loss:.3f}" for _, loss in report.curve[:: max(1, len(report.curve) // 20)])
    create_markdown_artifact(
        f"# {report.kind.upper()} adapter\n`{out / ADAPTER}`\n\n- rows: {report.rows}\n- steps: {report.steps} "
        f"({report.seconds:.0f} s on {report.device}; resumed from step {report.resumed_from_step})\n"
        f"- data fingerprint: `{report.data_fingerprint[:12]}`\n- loss curve: {curve}\n",
        key=f"{report.kind}-adapter", description=f"{report.kind.upper()} training")
    return str(out)
