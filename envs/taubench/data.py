"""tau-bench retail and airline, read from the files the `josh-train` wheel installs.

The task files are Python (`Task(user_id=..., actions=[Action(name=..., kwargs=...)], ...)`):
they are parsed with `ast` and never imported. Each episode (and each JOSH branch) gets its own
copy of the domain's JSON database; the reward compares database states by hash.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from core.errors import DataMissingError
from envs.toolwoz.data import package_file

Domain = Literal["retail", "airline"]
ROOT = "tau-bench-eval/tau_bench/envs"
TABLES = {"retail": ("orders", "products", "users"), "airline": ("flights", "reservations", "users")}
SPLITS = {"retail": ("test", "train", "dev"), "airline": ("test",)}


class Action(BaseModel, frozen=True):
    """One ground-truth tool call."""

    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


class TauTask(BaseModel, frozen=True):
    """A customer (`user_id`) with an instruction; success = the database the ground-truth actions leave,
    and every output string said to the customer."""

    domain: Domain
    split: str
    index: int
    user_id: str
    instruction: str
    actions: tuple[Action, ...]
    outputs: tuple[str, ...] = ()
    annotator: str | None = None

    @property
    def id(self) -> str:
        return f"{self.domain}-{self.split}-{self.index}"


def _domain_file(domain: Domain, name: str) -> Path:
    return package_file(f"{ROOT}/{domain}/{name}")


def _call_kwargs(node: ast.Call, path: Path) -> dict[str, Any]:
    out = {}
    for keyword in node.keywords:
        if isinstance(keyword.value, ast.List) and all(
                isinstance(e, ast.Call) and getattr(e.func, "id", None) == "Action" for e in keyword.value.elts):
            out[keyword.arg] = [_call_kwargs(e, path) for e in keyword.value.elts]
        else:
            try:
                out[keyword.arg] = ast.literal_eval(keyword.value)
            except ValueError:
                raise DataMissingError(f"{path}:{keyword.value.lineno}: {keyword.arg} is not a literal") from None
    return out


@cache
def load_tasks(domain: Domain, split: str) -> tuple[TauTask, ...]:
    """The tasks of one split, in file order."""
    if split not in SPLITS[domain]:
        raise DataMissingError(f"tau-bench {domain} has no {split!r} split (splits: {', '.join(SPLITS[domain])})")
    path = _domain_file(domain, f"tasks_{split}.py")
    tree = ast.parse(path.read_text(), filename=str(path))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Task"]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    return tuple(TauTask(domain=domain, split=split, index=i, **_call_kwargs(node, path)) for i, node in enumerate(calls))


@cache
def _database_text(domain: Domain) -> dict[str, str]:
    return {table: _domain_file(domain, f"data/{table}.json").read_text() for table in TABLES[domain]}


def fresh_database(domain: Domain) -> dict[str, Any]:
    """A private copy of the domain's database: one per episode and per JOSH branch (parsed anew from the
    cached text: faster than a deep copy)."""
    return {table: orjson.loads(text) for table, text in _database_text(domain).items()}


def policy(domain: Domain) -> str:
    """The domain's policy document: the agent's system prompt."""
    return _domain_file(domain, "wiki.md").read_text()


def state_hash(database: dict[str, Any]) -> str:
    """Hash of a database state, independent of key order (orjson: 5x faster than json here, and every episode's
    reward needs one)."""
    return hashlib.sha256(orjson.dumps(database, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()
