"""Exporting a run folder to fsspec URLs: the copy is whole, and a destination that cannot work says why."""

import fsspec
import huggingface_hub.constants
import pytest

from cli.main import main
from core.errors import ConfigError, EndpointError
from core.export import export


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "curate-1"
    (folder / "sft").mkdir(parents=True)
    (folder / "report.md").write_text("# funnel\n")
    (folder / "sft" / "data.arrow").write_bytes(b"\x00" * 100)
    return folder


def test_a_run_folder_is_copied_whole_to_another_filesystem(run, tmp_path, capsys):
    assert main(["export", str(run), "--to", "memory://bucket/runs/curate-1"]) == 0
    assert "copied" in capsys.readouterr().out
    fs = fsspec.filesystem("memory")
    assert sorted(fs.find("/bucket/runs/curate-1")) == ["/bucket/runs/curate-1/report.md", "/bucket/runs/curate-1/sft/data.arrow"]
    export(run, str(tmp_path / "mirror"))
    assert (tmp_path / "mirror" / "sft" / "data.arrow").read_bytes() == b"\x00" * 100


def test_destinations_that_cannot_work_are_named(run, monkeypatch):
    with pytest.raises(ConfigError, match="s3:// needs the s3fs package"):
        export(run, "s3://bucket/runs")
    with pytest.raises(ConfigError, match="hf://<user>/<repo>"):
        export(run, "hf://datasets/only-user")
    with pytest.raises(ConfigError, match="is not a folder"):
        export(run / "missing", "memory://x")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network here: the Hub call must fail cleanly
    with pytest.raises(EndpointError, match="could not copy .* to hf://me/adapter"):
        export(run, "hf://me/adapter")
