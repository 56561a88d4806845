"""Cache keys from the import graph: code a stage runs is in its key, docstrings, comments and other modules are not."""

import shutil

import pytest

from core import fingerprint
from roleplay.config import EvalConfig
from core.paths import PROJECT_ROOT
from core.fingerprint import code_fingerprint, module_closure
from models.bootstrap_config import BootstrapConfig
from models.embedded import embedded_model_dir
from tasks.evaluation import simulation_fingerprint

PACKAGES = ("core", "formats", "envs", "models", "roleplay", "quality", "tasks", "flows", "cli")
FEW_STEPS = BootstrapConfig(max_steps=2, max_dialogues=4, vocab_size=512, hidden=128, layers=2, heads=2,
                            intermediate=256, block_size=256)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the project's code that the keys are read from, to be edited."""
    for package in PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "PROJECT_ROOT", tmp_path)
    return tmp_path


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_embedded_build_hashes_its_recipe_and_formats_not_the_backends_or_the_configs():
    closure = module_closure("models.pretrain")
    assert {"models.pretrain", "models.tokenizer", "formats.react", "formats.user_sim", "models.bootstrap_config"} <= set(closure)
    assert not {"models.embedded", "models.hf_backend", "models.openai_backend", "core.config"} & set(closure)


def test_the_key_is_the_same_wherever_the_project_lives(project):
    assert code_fingerprint("tasks.evaluation", root=project) == code_fingerprint("tasks.evaluation", root=PROJECT_ROOT)


def test_a_docstring_or_comment_edit_keeps_the_key_a_code_edit_changes_it(project):
    before = code_fingerprint("models.pretrain")
    user_sim = project / "formats" / "user_sim.py"
    _edit(user_sim, '"""', '"""Reworded. ')
    user_sim.write_text(user_sim.read_text() + "\n# a comment\n")
    assert code_fingerprint("models.pretrain") == before
    user_sim.write_text(user_sim.read_text() + "UNUSED = 1\n")
    assert code_fingerprint("models.pretrain") != before


def test_an_evaluation_reruns_when_its_backends_change_the_embedded_build_does_not(project):
    cfg, ids = EvalConfig(n_tasks=2), ["a", "b"]
    model, evaluation = code_fingerprint("models.pretrain"), simulation_fingerprint(cfg, ids, "agent", "user")
    backend = project / "models" / "openai_backend.py"
    backend.write_text(backend.read_text() + "\nUNUSED = 1\n")
    assert simulation_fingerprint(cfg, ids, "agent", "user") != evaluation
    assert code_fingerprint("models.pretrain") == model


def test_the_embedded_model_is_rebuilt_for_a_code_edit_only(project, toolwoz):
    built = embedded_model_dir(FEW_STEPS)
    stamp = (built / "model.safetensors").stat().st_mtime_ns
    _edit(project / "models" / "embedded.py", "Building the embedded model", "Now building the embedded model")
    _edit(project / "models" / "pretrain.py", '"""Train the embedded model', '"""Train (reworded) the embedded model')
    assert embedded_model_dir(FEW_STEPS) == built
    assert (built / "model.safetensors").stat().st_mtime_ns == stamp
    react = project / "formats" / "react.py"
    react.write_text(react.read_text() + "\nUNUSED = 1\n")
    rebuilt = embedded_model_dir(FEW_STEPS)
    assert rebuilt != built and (rebuilt / "model.safetensors").is_file()
