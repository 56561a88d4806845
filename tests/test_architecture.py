"""The layer order (`.importlinter`) holds: no package imports one above it, no two modules import each other."""

import shutil
import subprocess
import sys
from pathlib import Path

from core.paths import PROJECT_ROOT

LINT = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
PACKAGES = ("core", "formats", "envs", "models", "roleplay", "quality", "tasks", "flows", "cli")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=root, capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": ""})


def test_the_code_keeps_its_layers_and_has_no_circles():
    result = _lint(PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_upward_import_or_a_circle_breaks_the_contracts(tmp_path):
    for package in PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / ".importlinter", tmp_path)
    types = tmp_path / "core" / "types.py"
    types.write_text(types.read_text() + "\nimport flows.pipeline  # upward\n")
    (tmp_path / "models" / "tokenizer.py").write_text((tmp_path / "models" / "tokenizer.py").read_text() + "\nimport models.embedded\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "core.types -> flows.pipeline" in result.stdout
    assert "No cycles are allowed in models" in result.stdout
