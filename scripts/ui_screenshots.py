"""A look at the Prefect UI as a user sees it: start the local server and worker, run a small
self-training pipeline through its deployment, and save screenshots of the flow run page (the
DAG of stages) and of the report artifact, taken in headless Chromium.

    .venv/bin/python scripts/ui_screenshots.py [--out ui-shots] [--set key=value ...]

Needs Debian's chromium (`apt-get install chromium`). The demo is small (20 training tasks,
20 held-out tasks) so it takes minutes on a CPU once the embedded model is built.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from core.paths import configure_prefect

DEMO = ["simulate.n_tasks=20", "evaluation.n_tasks=20", "runs_dir=runs/ui-demo"]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1600,1100", "--virtual-time-budget=20000"]


def screenshot(url: str, out: Path) -> Path:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", url],
                       check=True, capture_output=True, timeout=120)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="ui-shots", help="folder for the PNG files")
    parser.add_argument("--port", type=int, default=4200)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    configure_prefect()
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from cli import ops

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    url = ops.up(args.port)
    try:
        ops.deploy(["pipeline-embedded"])
        run = ops.trigger("pipeline-embedded", [*DEMO, *args.overrides], wait=True, timeout_s=3 * 3600)
        print(f"pipeline run {run.name}: {run.state.type.value}")
        ui = url.removesuffix("/api")
        print(screenshot(f"{ui}/runs/flow-run/{run.id}", out / "flow-run.png"))
        with ops.client(url) as client:
            artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
        for artifact in artifacts:
            if artifact.key in ("pipeline-report", "pipeline-comparison"):
                print(screenshot(f"{ui}/artifacts/artifact/{artifact.id}", out / f"{artifact.key}.png"))
        print(screenshot(f"{ui}/deployments", out / "deployments.png"))
    finally:
        ops.down()


if __name__ == "__main__":
    main()
