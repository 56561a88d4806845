"""Expectation suites as versioned files (quality/suites/*.yaml), each entry a filter with a reason.

A suite file holds `rows` entries (checked on every dialogue; a failed critical one drops the
row, from the training sets it `gates`: all by default) and `batch` entries (checked once on the batch summary; a failed critical one fails the
run). Every entry names a Great Expectations expectation and its arguments, a reason code the
dropped rows carry, a severity (`critical` drops or fails, `warning` only reports) and a
sentence saying why. A malformed file is one error naming the file and the entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.config import read_yaml_mapping
from core.errors import ConfigError, first_error

SUITES_DIR = Path(__file__).resolve().parent / "suites"


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Reason code a dropped row carries.")
    severity: Literal["critical", "warning"] = "critical"
    expectation: str = Field(description="A Great Expectations expectation, e.g. expect_column_values_to_be_between.")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    why: str = ""
    gates: tuple[Literal["sft", "dpo", "kto"], ...] = Field(
        ("sft", "dpo", "kto"), description="Training sets a row failing this critical entry is kept out of.")

    def gx(self):
        """The GX expectation, carrying the reason in its meta; Data Docs show reason, severity, why and bounds."""
        import great_expectations as gx

        cls = getattr(gx.expectations, _class_name(self.expectation))
        return cls(**self.kwargs, severity=self.severity, meta={"reason": self.reason}, description=self.describe())

    def describe(self) -> str:
        bounds = ", ".join(f"{k} {v}" for k, v in self.kwargs.items() if k != "column")
        column = self.kwargs.get("column", "the table")
        return f"{self.reason} ({self.severity}): {self.why} Checks {column}: {bounds or self.expectation}."


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    rows: tuple[Entry, ...] = ()
    batch: tuple[Entry, ...] = ()
    path: str = ""

    @property
    def where(self) -> str:
        """The suite file, relative to the project when it ships with it."""
        path = Path(self.path)
        return str(path.relative_to(SUITES_DIR.parents[1])) if path.is_relative_to(SUITES_DIR.parents[1]) else self.path


def suite_path(spec: str) -> Path:
    """A suite is a name in quality/suites/ or a path to a YAML file."""
    path = Path(spec)
    if path.suffix not in (".yaml", ".yml"):
        path = SUITES_DIR / f"{spec}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SUITES_DIR.glob("*.yaml")))
        raise ConfigError(f"expectation suite {spec!r} not found (known suites: {known})")
    return path


def load_suite(spec: str) -> Suite:
    path = suite_path(spec)
    data = read_yaml_mapping(path, "name, description, rows and batch")
    entries = {part: data.pop(part, None) or [] for part in ("rows", "batch")}
    try:
        header = Suite.model_validate({**data, "path": str(path)})
    except ValidationError as e:
        raise ConfigError(f"suite file {path}: {first_error(e)}") from None
    checked = {part: tuple(_entry(path, part, i, raw) for i, raw in enumerate(items, 1)) for part, items in entries.items()}
    reasons = [e.reason for part in checked.values() for e in part]
    if len(set(reasons)) < len(reasons):
        twice = sorted({r for r in reasons if reasons.count(r) > 1})
        raise ConfigError(f"suite file {path}: reason codes must be unique, {', '.join(twice)} appear twice")
    return header.model_copy(update=checked)


def _entry(path: Path, part: str, index: int, raw: Any) -> Entry:
    where = f"suite file {path}, {part} entry {index}"
    if isinstance(raw, dict) and "reason" in raw:
        where += f" ({raw['reason']})"
    try:
        entry = Entry.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{where}: {first_error(e)}") from None
    import great_expectations as gx

    if not hasattr(gx.expectations, _class_name(entry.expectation)):
        raise ConfigError(f"{where}: unknown expectation {entry.expectation!r}")
    try:
        entry.gx()
    except (TypeError, ValueError) as e:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"{where}: bad arguments for {entry.expectation}: {_one_line(e)}") from None
    return entry


def _class_name(expectation: str) -> str:
    return "".join(part.title() for part in expectation.split("_"))


def _one_line(e: Exception) -> str:
    """GX validates arguments with pydantic (v1 API): show its first error's field and message."""
    if callable(getattr(e, "errors", None)):
        err = e.errors()[0]
        key = ".".join(str(x) for x in err["loc"] if x != "__root__")
        return f"{key}: {err['msg']}" if key else err["msg"]
    return " ".join(str(e).split())
