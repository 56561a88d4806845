"""Great Expectations runs: row filters from validation results, batch checks, Data Docs.

Row filters: every `rows` entry of the suites is validated on the dialogue table with the
COMPLETE result format; its `unexpected_index_list` names the failing rows, which carry the
entry's reason. Critical entries drop those rows, warnings only record them. Batch entries are
validated on a one-row summary of what was kept. GX contexts are not thread-safe, so every run
here makes its own ephemeral context and holds one process-wide lock (two curate tasks in
threads then give the same answers as one after the other).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from quality.suites import Entry, Suite

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
_GX_LOCK = threading.Lock()
COMPLETE = {"result_format": "COMPLETE"}


@dataclass
class Check:
    """What one suite entry found: the rows it failed (positions in the table), and whether it passed."""

    suite: str
    entry: Entry
    failing: list[int]
    success: bool
    observed: object = None  # batch entries: the value checked


@dataclass
class RowVerdicts:
    checks: list[Check]
    dropped: dict[int, list[str]] = field(default_factory=dict)  # row -> critical reasons
    warned: dict[int, list[str]] = field(default_factory=dict)  # row -> warning reasons

    def kept(self, n: int) -> list[int]:
        """Rows that passed every critical entry."""
        return [i for i in range(n) if i not in self.dropped]

    def kept_for(self, n: int, dataset: str) -> list[int]:
        """Rows no critical entry gating `dataset` failed: e.g. JOSH's full-reward filter gates SFT only,
        so a dialogue that earned some sub-goals still gives its preference pairs."""
        gone = {i for c in self.checks if c.entry.severity == "critical" and dataset in c.entry.gates for i in c.failing}
        return [i for i in range(n) if i not in gone]


def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _gx_suite(context, name: str, entries: tuple[Entry, ...], notes: str | None = None):
    import great_expectations as gx

    suite = context.suites.add(gx.ExpectationSuite(name=name, notes=notes))
    for e in entries:
        suite.add_expectation(e.gx())
    return suite


def _batch_definition(context, name: str):
    return context.data_sources.add_pandas(name).add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)


def _checks(context, table: pd.DataFrame, suites: list[Suite], part: str) -> list[Check]:
    """Validate one part (`rows` or `batch`) of each suite on a table with a fresh 0..n-1 index."""
    table = table.reset_index(drop=True)
    definition = _batch_definition(context, part)
    checks = []
    for suite in suites:
        entries = getattr(suite, part)
        if not entries:
            continue
        result = definition.get_batch(batch_parameters={"dataframe": table}).validate(
            _gx_suite(context, f"{suite.name}.{part}", entries), result_format=COMPLETE)
        by_reason = {r.expectation_config.meta["reason"]: r for r in result.results}
        for entry in entries:
            r = by_reason[entry.reason]
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise ValueError(f"suite {suite.name}, {entry.reason}: {r.exception_info['exception_message']}")
            failing = [int(i) for i in r.result.get("unexpected_index_list") or []]
            checks.append(Check(suite.name, entry, failing, bool(r.success)))
    return checks


def filter_rows(table: pd.DataFrame, suites: list[Suite]) -> RowVerdicts:
    with _GX_LOCK:
        checks = _checks(_context(), table, suites, "rows")
    verdicts = RowVerdicts(checks)
    for check in checks:
        target = verdicts.dropped if check.entry.severity == "critical" else verdicts.warned
        for i in check.failing:
            target.setdefault(i, []).append(check.entry.reason)
    return verdicts


def check_batch(summary: dict[str, float], suites: list[Suite]) -> list[Check]:
    with _GX_LOCK:
        checks = _checks(_context(), pd.DataFrame([summary]), suites, "batch")
    for check in checks:
        check.observed = summary.get(check.entry.kwargs.get("column"))
    return checks


def funnel(n: int, verdicts: RowVerdicts) -> list[dict[str, str]]:
    """Rows left after each entry in suite order, and how many rows each entry failed."""
    rows, gone = [], set()
    for check in verdicts.checks:
        if check.entry.severity == "critical":
            gone |= set(check.failing)
        rows.append({"suite": check.suite, "reason": check.entry.reason, "severity": check.entry.severity,
                     "gates": ", ".join(check.entry.gates) if check.entry.severity == "critical" else "",
                     "failing rows": str(len(check.failing)), "rows left": str(n - len(gone))})
    return rows


def build_data_docs(table: pd.DataFrame, summary: dict[str, float], suites: list[Suite], directory: Path,
                    run_name: str) -> Path:
    """A static Data Docs site for this run (the suites and what they found), written under `directory`.

    Validated again with the SUMMARY format, so the pages list failing examples, not every failing row.
    """
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    directory.mkdir(parents=True, exist_ok=True)
    with _GX_LOCK:
        context = _context()
        context.add_data_docs_site(site_name="run", site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(directory.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
        frames = {"rows": ("dialogues", table.reset_index(drop=True)), "batch": ("batch summary", pd.DataFrame([summary]))}
        for part, (asset, frame) in frames.items():
            definition = _batch_definition(context, asset)
            validations = [context.validation_definitions.add(gx.ValidationDefinition(
                name=f"{s.name}.{part}", data=definition,
                suite=_gx_suite(context, f"{s.name}.{part}", getattr(s, part), f"{s.description} ({s.where})")))
                for s in suites if getattr(s, part)]
            if validations:
                checkpoint = context.checkpoints.add(gx.Checkpoint(
                    name=f"curate {part}", validation_definitions=validations,
                    actions=[UpdateDataDocsAction(name="docs", site_names=["run"])], result_format={"result_format": "SUMMARY"}))
                checkpoint.run(batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=run_name))
    index = directory.resolve() / "index.html"
    _link_pages_without_scripts(index)
    return index


def _link_pages_without_scripts(index: Path) -> None:
    """GX's index lists its pages with scripts from CDNs: offline it shows nothing. A plain list of the
    pages at the top of the index keeps every page one click away, online or not."""
    pages = sorted(p.relative_to(index.parent) for p in index.parent.glob("*/**/*.html"))
    label = {"expectations": "expectations", "validations": "what they found"}
    items = "".join(f'<li><a href="{p.as_posix().replace(" ", "%20")}">{p.parts[1]} {p.parts[2].removesuffix(".html")}: '
                    f'{label[p.parts[0]]}</a></li>' for p in pages)
    html = index.read_text()
    body = html.index(">", html.index("<body")) + 1
    note = ("<p>Which dialogues each entry dropped, with their reasons: the run folder's <code>dropped</code> dataset "
            "and <code>metrics.parquet</code>.</p>")
    index.write_text(html[:body] + f'<div class="container"><h4>Pages</h4><ul>{items}</ul>{note}</div>' + html[body:])
