"""The Prefect task runner a flow's fan-out runs on, from its `RunnerConfig`.

`local` keeps the shards sequential in this process (a shard already batches every model call
and uses every core). `dask` and `ray` run them in parallel in worker processes; those workers
report to the Prefect API, so they need a real server (`selftrain ops up`, then PREFECT_API_URL):
in ephemeral mode each worker would start a server of its own.
"""

from __future__ import annotations

import os

from core.config import RunnerConfig
from core.errors import ConfigError


def task_runner(cfg: RunnerConfig):
    from prefect.task_runners import ThreadPoolTaskRunner

    if cfg.kind == "local":
        return ThreadPoolTaskRunner(max_workers=1)
    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError(f"runner.kind={cfg.kind} needs a Prefect server its workers can reach: start one with "
                          "`selftrain ops up` and export the PREFECT_API_URL it prints")
    if cfg.kind == "dask":
        from prefect_dask import DaskTaskRunner

        if cfg.address:
            return DaskTaskRunner(address=cfg.address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": cfg.workers, "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": None})
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:
        raise ConfigError("runner.kind=ray needs prefect-ray: pip install -e '.[ray]'") from None
    return RayTaskRunner(address=cfg.address, init_kwargs={"num_cpus": cfg.workers} if not cfg.address else None)
