"""Errors a user can fix. The CLI prints these as one line and exits non-zero; anything else is a bug."""

from __future__ import annotations

from pydantic import ValidationError


class UserError(Exception):
    """Bad input from the user or their machine: the message says what is wrong and how to fix it."""


class ConfigError(UserError):
    """Unknown key, wrong type or malformed preset file."""


class ModelSpecError(UserError):
    """A model spec string that names no backend, or a model that cannot be found."""


class EndpointError(UserError):
    """An API endpoint that cannot be reached or rejects us (after retries)."""


class DataMissingError(UserError):
    """A data package (josh-train) that is not installed or incomplete."""


class BadFileError(UserError):
    """A file or folder a run reads (dialogues, a dataset, an adapter) that is corrupt, truncated or not what it
    should be: the message names it, and the line or field."""


class QualityGateError(UserError):
    """A whole batch failed a critical dataset-level expectation (its datasets are still written)."""


def first_error(e: ValidationError) -> str:
    """A pydantic error as one line: the first problem's field and message."""
    err = e.errors()[0]
    key = ".".join(str(x) for x in err["loc"])
    message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
    return f"{key}: {message}" if key else message
