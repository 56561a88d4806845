"""Copy a finished run folder or adapter to any fsspec URL: another disk, S3, GCS, or the Hugging Face Hub.

Runs and caches are written locally (fast, resumable); this publishes what a user wants to keep or
share. `s3://bucket/prefix` needs s3fs and `gs://` gcsfs (their usual credentials); `hf://<user>/<repo>`
(a model repo, for adapters) and `hf://datasets/<user>/<repo>` (for datasets) create the repository if
needed and take the token from HF_TOKEN. Secrets are read from the environment only.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import ConfigError, EndpointError

BACKENDS = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}


def _hub_repo(url: str) -> tuple[str, str]:
    """`hf://datasets/user/name/...` -> ("user/name", "dataset"); `hf://user/name/...` -> ("user/name", "model")."""
    parts = url.removeprefix("hf://").split("/")
    kind = {"datasets": "dataset", "spaces": "space"}.get(parts[0])
    parts = parts[1:] if kind else parts
    if len(parts) < 2 or not all(parts[:2]):
        raise ConfigError(f"{url!r}: a Hub destination looks like hf://<user>/<repo> or hf://datasets/<user>/<repo>")
    return "/".join(parts[:2]), kind or "model"


def export(folder: str | Path, to: str) -> str:
    """Copy `folder` (recursively) under the URL `to`; returns the destination."""
    import fsspec

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"nothing to export: {folder} is not a folder")
    protocol = to.split("://", 1)[0] if "://" in to else "file"
    try:
        fs, root = fsspec.core.url_to_fs(to)
    except ImportError:
        raise ConfigError(f"{protocol}:// needs the {BACKENDS.get(protocol, protocol + ' fsspec')} package: "
                          f"pip install {BACKENDS.get(protocol, '<its fsspec implementation>')}") from None
    except ValueError as e:
        raise ConfigError(f"{to!r} is not a storage URL fsspec knows ({e})") from None
    try:
        if protocol == "hf":
            from huggingface_hub import HfApi

            repo_id, repo_type = _hub_repo(to)
            HfApi(token=os.environ.get("HF_TOKEN")).create_repo(repo_id, repo_type=repo_type, private=True, exist_ok=True)
        fs.makedirs(root, exist_ok=True)
        fs.put(f"{folder}/", root.rstrip("/") + "/", recursive=True)
    except (OSError, ConnectionError) as e:  # network, permissions, a rejected token
        raise EndpointError(f"could not copy {folder} to {to}: {type(e).__name__}: {e}") from None
    except Exception as e:
        if type(e).__module__.startswith(("huggingface_hub", "requests", "httpx")):
            raise EndpointError(f"could not copy {folder} to {to}: {type(e).__name__}: {e}") from None
        raise
    return to
