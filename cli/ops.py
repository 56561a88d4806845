"""Local operations: a Prefect server and a process worker on 127.0.0.1, the deployments of
prefect.yaml, parameterized runs, and a clean stop.

The server keeps its database in the state dir (`ops/server-home`); the worker runs flows with
this process's Prefect settings (`core.paths.configure_prefect`), so a deployed run reads and
writes the same result storage, and hits the same caches, as a run from the command line.
Stopping takes the worker down first (a process worker exits on a second SIGINT), then the server.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from core.config import apply_overrides, parse_override
from core.errors import ConfigError, UserError
from core.paths import PROJECT_ROOT, state_dir

POOL = "local"
HOST = "127.0.0.1"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class OpsError(UserError):
    """The local server or worker cannot be started, reached or stopped as asked."""


@dataclass
class Service:
    """A background process this module started: its pid and log live in the state dir."""

    name: str

    @property
    def pid_file(self) -> Path:
        return ops_dir() / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return ops_dir() / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None

    def start(self, args: list[str], env: dict[str, str]) -> int:
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=PROJECT_ROOT, env=env, start_new_session=True)
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, signals: tuple[int, ...], wait_s: float) -> None:
        """Send each signal to the process group in turn until it exits; SIGKILL after the last wait."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        for sig in (*signals, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            if _wait_exit(pid, wait_s):
                break
        self.pid_file.unlink(missing_ok=True)


SERVER, WORKER = Service("server"), Service("worker")


def ops_dir() -> Path:
    path = state_dir() / "ops"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _wait_exit(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:  # not our child: poll for it instead
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.2)
    return False


def api_url() -> str:
    """The running server's API URL, from the state dir."""
    info = ops_dir() / "server.json"
    if SERVER.pid() is None or not info.is_file():
        raise OpsError("no local Prefect server is running: start one with `selftrain ops up`")
    return json.loads(info.read_text())["api_url"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _prefect(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


def up(port: int = 4200, timeout_s: float = 180) -> str:
    """Start the server and a process worker polling the `local` pool; returns the API URL."""
    if SERVER.pid() is not None:
        raise OpsError(f"a local server is already running at {api_url()} (stop it with `selftrain ops down`)")
    url = f"http://{HOST}:{port}/api"
    if _healthy(url):
        raise OpsError(f"port {port} already serves a Prefect API that this project did not start: choose another --port")
    server_env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    server_env |= {"PREFECT_HOME": str(ops_dir() / "server-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    SERVER.start(_prefect("server", "start", "--host", HOST, "--port", str(port)), server_env)
    deadline = time.monotonic() + timeout_s
    while not _healthy(url):
        if SERVER.pid() is None or time.monotonic() > deadline:
            SERVER.stop((signal.SIGTERM,), 5)
            raise OpsError(f"the Prefect server did not come up on {url}; its log ends:\n{SERVER.log_tail()}")
        time.sleep(0.5)
    (ops_dir() / "server.json").write_text(json.dumps({"api_url": url, "ui_url": url.removesuffix("/api")}))
    _ensure_pool(url)
    worker_env = dict(os.environ) | {"PREFECT_API_URL": url}
    worker_env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "5")
    WORKER.start(_prefect("worker", "start", "--pool", POOL, "--type", "process", "--name", f"selftrain-{port}"),
                 worker_env)
    return url


def client(url: str):
    """A Prefect API client for the server at `url` (not the ambient settings: those may point elsewhere)."""
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(url)


def _ensure_pool(url: str) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with client(url) as api:
        try:
            api.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
        except ObjectAlreadyExists:
            pass


def down() -> None:
    """Stop the worker (it needs a second SIGINT to leave a run it is watching), then the server."""
    WORKER.stop((signal.SIGINT, signal.SIGINT), 10)
    SERVER.stop((signal.SIGTERM,), 20)
    (ops_dir() / "server.json").unlink(missing_ok=True)


def deploy(names: list[str] | None = None) -> str:
    """Register prefect.yaml's deployments (all, or the named ones) on the running server; returns Prefect's output."""
    env = dict(os.environ) | {"PREFECT_API_URL": api_url(), "PWD": str(PROJECT_ROOT)}  # prefect.yaml's `{{ $PWD }}`
    which = [arg for name in names for arg in ("--name", name)] if names else ["--all"]
    done = subprocess.run(_prefect("--no-prompt", "deploy", *which), cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True)
    if done.returncode:
        raise OpsError(f"`prefect deploy` failed:\n{(done.stdout + done.stderr).strip()[-2000:]}")
    return done.stdout


def run_parameters(deployment, overrides: list[str]) -> dict:
    """The deployment's parameters with `--set` overrides applied, checked against the flow's signature.

    A key whose first part names a flow parameter sets that parameter (`base.spec=...`); any other key
    sets a field of `cfg` (`n_tasks=5` is `cfg.n_tasks=5`), as the CLI's `--set` does.
    """
    from prefect.exceptions import ParameterTypeError
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(str(PROJECT_ROOT / deployment.entrypoint))
    names = set(flow.parameters.properties)
    prefixed = [text if parse_override(text)[0].split(".")[0] in names else f"cfg.{text}" for text in overrides]
    params = apply_overrides(json.loads(json.dumps(deployment.parameters)), prefixed)
    flow_logger = logging.getLogger("prefect.flows")
    flow_logger.disabled = True  # it would log the whole parameter dump before our one-line error
    try:
        flow.validate_parameters(params)
    except ParameterTypeError as e:
        raise ConfigError(f"{deployment.name}: {e}") from None
    finally:
        flow_logger.disabled = False
    return params


def trigger(name: str, overrides: list[str] = (), wait: bool = False, timeout_s: float = 3600):
    """Create a flow run of the deployment `name` (or `flow/deployment`) with overrides; with `wait`,
    return once it has finished. Returns the flow run."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    url = api_url()
    with client(url) as api:
        found = api.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name.split("/")[-1]])))
        if not found:
            known = sorted(d.name for d in api.read_deployments())
            raise OpsError(f"no deployment {name!r} on {url} (deployed: {', '.join(known) or 'none: run `selftrain ops deploy`'})")
        deployment = found[0]
        run = api.create_flow_run_from_deployment(deployment.id, parameters=run_parameters(deployment, overrides))
        deadline = time.monotonic() + timeout_s
        while wait and run.state.type.value not in FINAL and time.monotonic() < deadline:
            time.sleep(2)
            run = api.read_flow_run(run.id)
    return run


def status() -> dict:
    """What is running, what is deployed, and the next scheduled runs."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    info = {"server": SERVER.pid(), "worker": WORKER.pid()}
    if info["server"] is None:
        return info
    with client(api_url()) as api:
        info["deployments"] = sorted(d.name for d in api.read_deployments())
        scheduled = api.read_flow_runs(flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))), limit=10)
        info["scheduled"] = [(r.name, str(r.expected_start_time)) for r in scheduled]
    return info
