"""ToolWOZ tasks and splits, built from the files the `josh-train` wheel installs.

The wheel's zip is read in place (never unzipped into site-packages) and `josh_train` is
never imported (it needs undeclared packages and relative paths). Reading data.json costs
~5 s and ~760 MB, so the tasks are built once and cached as JSON under the user cache dir.
"""

from __future__ import annotations

import html
import importlib.metadata
import json
import re
import zipfile
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from tqdm.auto import tqdm

from core.errors import DataMissingError
from core.cache import reuse
from core.paths import cache_dir, write_atomically
from core.types import ToolCall

DISTRIBUTION = "josh-train"
DOMAINS = ("hotel", "attraction", "train", "restaurant")  # the order josh-train builds calls in
EXCLUDED_DOMAINS = ("taxi", "police", "hospital")
TEST_SIZE = 450
BUILD_VERSION = 1  # bump when the task builder changes, to invalidate caches

Split = Literal["train", "val", "test", "full_test"]


def unique_id_key(domain: str) -> str:
    """The column that identifies a bookable entity: trains by ID, everything else by name."""
    return "trainID" if domain == "train" else "name"


def is_empty(value: Any) -> bool:
    """MultiWOZ's ways of saying 'no constraint'."""
    return value in ("", "dont care", "not mentioned", "don't care", "dontcare", "do n't care")


class DomainGoal(BaseModel):
    """What the user wants in one domain, as the ground-truth calls that achieve it."""

    search: dict[str, Any] | None = None  # search params ('' = unconstrained)
    book: dict[str, Any] | None = None  # book params incl. the booked entity's name/trainID
    booked: dict[str, Any] | None = None  # what a correct booking returns (incl. reference)


class ToolWOZTask(BaseModel):
    id: str
    goal_lines: list[str]
    goals: dict[str, DomainGoal]

    @property
    def instruction(self) -> str:
        return "\n".join(self.goal_lines)

    def ground_truth_calls(self) -> list[ToolCall]:
        calls = []
        for domain, goal in self.goals.items():
            if goal.search is not None:
                calls.append(ToolCall(name=f"search_{domain}", arguments=goal.search))
            if goal.book is not None:
                calls.append(ToolCall(name=f"book_{domain}", arguments=goal.book))
        return calls


class ToolWOZData(BaseModel):
    """Everything the environment needs: tasks, splits, databases, tool schemas."""

    tasks: dict[str, ToolWOZTask]
    splits: dict[str, list[str]]
    databases: dict[str, list[dict[str, Any]]]
    api_params: dict[str, list[str]]  # the agent's tools and their valid parameters
    tool_schemas: list[dict[str, Any]]  # OpenAI function schemas, as shipped

    def split(self, name: Split) -> list[ToolWOZTask]:
        return [self.tasks[i] for i in self.splits[name]]


def package_file(relative: str) -> Path:
    """A file installed by the josh-train wheel; a clear error if the package is missing."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise DataMissingError(
            f"{DISTRIBUTION} is not installed; it ships the ToolWOZ data: pip install {DISTRIBUTION}==0.1.4"
        ) from None
    path = Path(dist.locate_file(relative))
    if not path.exists():
        raise DataMissingError(f"{DISTRIBUTION} is installed but {relative} is missing; reinstall it")
    return path


def _read_json(relative: str) -> Any:
    return json.loads(package_file(relative).read_text())


def load_database(domain: str) -> list[dict[str, Any]]:
    """Rows of a domain's DB with every column present (missing ones None), as a table would have."""
    rows = _read_json(f"db/{domain}_db.json")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return [{c: row.get(c) for c in columns} for row in rows]


def query(rows: list[dict[str, Any]], constraints: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows matching every non-empty string constraint; leaveAt is strictly later, arriveBy strictly earlier."""
    for key, value in constraints.items():
        if not isinstance(value, str) or not value or is_empty(value):
            continue
        value = value.replace("'", "''")  # josh-train's SQL-era quoting, kept for identical results
        if key == "leaveAt":
            rows = [r for r in rows if isinstance(r.get(key), str) and r[key] > value]
        elif key == "arriveBy":
            rows = [r for r in rows if isinstance(r.get(key), str) and r[key] < value]
        else:
            rows = [r for r in rows if r.get(key) == value]
    return rows


def _strip_markup(line: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", line)).strip()


def _domain_goal(domain, goal, final_metadata, api_defs, db) -> DomainGoal:
    """The ground-truth calls of one domain, following josh-train's builder rule for rule."""
    out = DomainGoal()
    if goal.get("info"):
        out.search = {p: goal["info"].get(p, "") for p in api_defs[f"search_{domain}"]["parameters"]}
    if goal.get("book"):
        params = {p: goal["book"].get(p, "") for p in api_defs[f"book_{domain}"]["parameters"]}
        booked = [dict(b) for b in final_metadata[domain]["book"]["booked"]]
        if booked and out.search is not None:
            booked = _fill_missing_returns(domain, booked, final_metadata[domain]["semi"], out.search, db, api_defs)
        if booked:
            out.booked = booked[-1]
            key = unique_id_key(domain)
            params[key] = out.booked[key]
            out.book = params
    return out


def _fill_missing_returns(domain, booked, semi, search, db, api_defs):
    """josh-train completes booked entries from the belief state, else from the first search row.

    That first row is mapped onto the return names by position (as josh-train does), which
    is only right when columns line up; kept so both score the same tasks the same way.
    """
    expected = api_defs[f"book_{domain}"]["returns"]
    rows = query(db, search)
    first = dict(zip(api_defs[f"search_{domain}"]["returns"], rows[0].values())) if rows else {}
    for item in booked:
        for key in set(expected) - set(item):
            item[key] = semi[key] if key in semi and not is_empty(semi[key]) else first[key]
    return booked


def read_dataset(name: Literal["data.json", "delex.json"]) -> dict[str, Any]:
    """One of the MultiWOZ files inside the wheel's zip (data.json: ~4 s, ~760 MB)."""
    with zipfile.ZipFile(package_file("data/dataset.zip")) as z:
        return json.loads(z.read(name))


def build_data() -> ToolWOZData:
    tool_schemas = _read_json("data/tools.json")
    api_defs = {name: spec for domain in _read_json("data/valid_api_defs.json").values() for name, spec in domain.items()}
    raw, delex = read_dataset("data.json"), read_dataset("delex.json")
    databases = {d: load_database(d) for d in DOMAINS}
    tasks = {}
    for key, convo in tqdm(raw.items(), desc="building ToolWOZ tasks (first run only)", unit="dlg"):
        goal = convo["goal"]
        if any(goal[d] for d in EXCLUDED_DOMAINS):
            continue
        log = delex[key]["log"]
        final_metadata = log[-1]["metadata"] or log[-2]["metadata"]
        goals = {
            d: _domain_goal(d, goal[d], final_metadata, api_defs, databases[d]) for d in DOMAINS if goal[d]
        }
        lines = [_strip_markup(m) for m in delex[key]["goal"]["message"]]
        tasks[key] = ToolWOZTask(id=key, goal_lines=lines, goals=goals)
    return ToolWOZData(
        tasks=tasks,
        splits=_splits(tasks),
        databases=databases,
        api_params={t["function"]["name"]: api_defs[t["function"]["name"]]["parameters"] for t in tool_schemas},
        tool_schemas=tool_schemas,
    )


def _splits(tasks: dict[str, ToolWOZTask]) -> dict[str, list[str]]:
    def listed(name: str) -> set[str]:
        return {line.strip() for line in package_file(f"data/{name}").read_text().splitlines() if line.strip()}

    full_test = sorted(listed("testListFile.json") & tasks.keys())
    val = sorted(listed("valListFile.json") & tasks.keys())
    train = sorted(tasks.keys() - set(full_test) - set(val))
    return {"train": train, "val": val, "test": full_test[:TEST_SIZE], "full_test": full_test}


def data_version() -> str:
    """Which data the tasks come from: part of every cache key built on them."""
    package_file("data/dataset.zip")  # fails clearly when josh-train is missing
    return f"{importlib.metadata.version(DISTRIBUTION)}-v{BUILD_VERSION}"


def _cache_path() -> Path:
    return cache_dir() / "toolwoz" / f"toolwoz-{data_version()}.json"


@cache
def load_toolwoz() -> ToolWOZData:
    """The ToolWOZ data, built on first use and read from the cache afterwards (~1 s)."""
    path = _cache_path()
    if reuse(path):
        return ToolWOZData.model_validate_json(path.read_bytes())
    data = build_data()
    write_atomically(path, data.model_dump_json())
    return data
