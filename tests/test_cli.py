"""Bad input through the real CLI: one clear line on stderr, exit code 2, no traceback."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HIDE_JOSH_TRAIN = (
    "import importlib.metadata as m; real = m.distribution\n"
    "def distribution(name):\n"
    "    if name == 'josh-train': raise m.PackageNotFoundError(name)\n"
    "    return real(name)\n"
    "m.distribution = distribution\n"
    "from cli.main import main; raise SystemExit(main(['evaluate']))\n"
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return _run("-m", "cli.main", "evaluate", *args)


@pytest.fixture
def bad_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("agent:\n  spec: embedded\n  n_tasks: [3\n")
    return str(path)


def _run_folder(near: str) -> str:
    folder = Path(near).parent / "run"
    folder.mkdir(exist_ok=True)
    (folder / "dialogues.jsonl").write_text("")
    return str(folder)


def _bad_suite(near: str) -> str:
    path = Path(near).parent / "suite.yaml"
    path.write_text("name: s\nrows:\n  - reason: x\n    expectation: expect_nothing\n")
    return str(path)


@pytest.mark.parametrize("case, expected", [
    ("unknown spec", "unknown model spec 'gpt-4o'"),
    ("agenda as agent", "`agenda` is a user simulator, not a model: use it as user.spec"),
    ("unreachable url", "cannot reach http://127.0.0.1:"),
    ("unknown key", "unknown config key 'agent.temprature'"),
    ("malformed yaml", "malformed YAML in"),
    ("josh-train missing", "josh-train is not installed"),
    ("bootstrap key", "unknown config key 'budjet_s'"),
    ("bootstrap shape", "hidden (256) must be divisible by heads (3)"),
    ("curate source", "holds no dialogues.jsonl"),
    ("curate suite", "rows entry 1 (x): unknown expectation 'expect_nothing'"),
    ("benchmark split", "airline has no 'train' split (splits: test)"),
])
def test_bad_input_gets_one_clear_line_and_exit_2(case, expected, bad_yaml):
    result = {
        "unknown spec": lambda: _cli("--set", "agent.spec=gpt-4o"),
        "agenda as agent": lambda: _cli("--set", "agent.spec=agenda"),
        "unreachable url": lambda: _cli("--set", "agent.spec=openai:m", "--set",
                                        f"agent.base_url=http://127.0.0.1:{_closed_port()}/v1"),
        "unknown key": lambda: _cli("--set", "agent.temprature=0.3"),
        "malformed yaml": lambda: _cli("--preset", bad_yaml),
        "josh-train missing": lambda: _run("-c", HIDE_JOSH_TRAIN),
        "bootstrap key": lambda: _run("-m", "cli.main", "bootstrap", "--set", "budjet_s=3"),
        "bootstrap shape": lambda: _run("-m", "cli.main", "bootstrap", "--set", "hidden=256", "--set", "heads=3"),
        "curate source": lambda: _run("-m", "cli.main", "curate", "--set", f"source={bad_yaml}.missing"),
        "curate suite": lambda: _run("-m", "cli.main", "curate", "--set", f"source={_run_folder(bad_yaml)}",
                                     "--set", f"suites=[{_bad_suite(bad_yaml)}]"),
        "benchmark split": lambda: _cli("--set", "benchmark=airline", "--set", "split=train"),
    }[case]()
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_help_lists_the_commands_and_options():
    result = _cli("--help")
    assert result.returncode == 0 and "--preset" in result.stdout and "--set" in result.stdout


def test_pipeline_help_shows_every_knob():
    from core.config import knobs
    from flows.pipeline_config import PipelineConfig

    result = _run("-m", "cli.main", "pipeline", "--help")
    keys = [line.split()[0] for line in knobs(PipelineConfig)]
    assert result.returncode == 0 and len(keys) > 100
    for key in ("preference.beta", "sft.lora_r", "simulate.beam_size", "evaluation.n_tasks", "suites", "user.spec"):
        assert key in keys and f"  {key} = " in result.stdout, key
    assert "simulate.agent.spec" not in result.stdout  # roles are set once, at the top


def test_progress_bars_redraw_rarely_into_a_log():
    """In a log file (stderr is not a terminal) a bar updated 200 times over a second redraws at its start and end."""
    script = ("import time; from cli.main import quiet_progress_bars; quiet_progress_bars()\n"
              "from tqdm.auto import tqdm\n"
              "for _ in tqdm(range(200)): time.sleep(0.005)")
    env = {k: v for k, v in os.environ.items() if k != "TQDM_MININTERVAL"}
    log = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60)  # bytes: keep \r
    assert log.returncode == 0 and log.stderr.count(b"\r") <= 3, log.stderr


def test_a_broken_file_met_inside_a_flow_is_one_error_line_without_traceback(tmp_path):
    """Read in a Prefect task, a truncated dialogues.jsonl fails the run with the file and line, exit 2."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "dialogues.jsonl").write_text('{"id": "x", "scenario": {"domain": "toolwoz", "ta\n')
    result = _run("-m", "cli.main", "curate", "--set", f"source={tmp_path / 'run'}", "--set", f"runs_dir={tmp_path}")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    assert f"{tmp_path / 'run' / 'dialogues.jsonl'}, line 1: not a dialogue (Invalid JSON" in errors[0]
    assert "Traceback" not in result.stdout + result.stderr
