"""The pipeline's verdict: base vs SFT vs the preference or RL step on the same held-out tasks, as a table, a plot and a report.

Each stage's evaluation saved its dialogues; success and reward per task are read back from them,
so every figure is computed on the same tasks in the same order. Intervals are 95% bootstrap
intervals over tasks; each change is a paired bootstrap against the stage before it.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from pathlib import Path
from statistics import mean

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from core.records import read_jsonl
from core.types import Dialogue
from quality.metrics import bootstrap_mean, paired_difference, pass_hat_k
from tasks.run_report import markdown_table


def per_task(dialogues: list[Dialogue]) -> dict[str, tuple[float, float]]:
    """scenario id -> (success, reward) of one evaluation run, each the mean over the scenario's trials
    (a scenario: a task, played by a persona or not)."""
    trials: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for d in dialogues:
        trials[d.id].append((float(d.outcome.success), d.outcome.reward))
    return {i: (mean(s for s, _ in runs), mean(r for _, r in runs)) for i, runs in trials.items()}


def _interval(m: tuple[float, float, float], scale: float = 1.0, digits: int = 3, unit: str = "") -> str:
    low, mid, high = (f"{scale * x:.{digits}f}" for x in (m[1], m[0], m[2]))
    return f"{mid}{unit} [{low}, {high}]"


def comparison(stages: dict[str, str]) -> list[dict]:
    """One row per stage (name -> evaluation run dir): success and reward with intervals, and the paired
    change against the previous stage."""
    dialogues = {name: read_jsonl(Path(run) / "dialogues.jsonl") for name, run in stages.items()}
    outcomes = {name: per_task(found) for name, found in dialogues.items()}
    tasks = sorted(set.intersection(*(set(o) for o in outcomes.values())))
    rows, previous = [], None
    for name, o in outcomes.items():
        success, reward = [o[t][0] for t in tasks], [o[t][1] for t in tasks]
        row = {"stage": name, "tasks": len(tasks), "success": bootstrap_mean(success), "reward": bootstrap_mean(reward)}
        runs = [d for d in dialogues[name] if d.id in set(tasks)]
        if (trials := len(runs) // max(1, len(tasks))) > 1:
            row["pass_hat_k"] = pass_hat_k(runs, trials)
        if previous:
            row["success_change"] = paired_difference(success, previous[0])
            row["reward_change"] = paired_difference(reward, previous[1])
        rows.append(row)
        previous = (success, reward)
    return rows


def display_rows(rows: list[dict]) -> list[dict[str, str]]:
    def change(row, key, scale, digits, unit):
        if key not in row:
            return ""
        m = row[key]
        verdict = "significant" if m[1] > 0 or m[2] < 0 else "not significant"
        return f"{_interval(m, scale, digits, unit)} ({verdict})"

    def passes(row):
        return {} if "pass_hat_k" not in row else {
            f"pass^1..{len(row['pass_hat_k'])} %": " / ".join(f"{100 * v:.1f}" for v in row["pass_hat_k"].values())}

    return [{"stage": r["stage"], "tasks": str(r["tasks"]), "success % [95% CI]": _interval(r["success"], 100, 1),
             "avg reward [95% CI]": _interval(r["reward"]), **passes(r),
             "success change vs previous": change(r, "success_change", 100, 1, " pts"),
             "reward change vs previous": change(r, "reward_change", 1, 3, "")} for r in rows]


def plot(rows: list[dict], path: Path, held_out: str) -> Path:
    """Success and average reward per stage with their 95% intervals, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    names = [r["stage"] for r in rows]
    for ax, key, title, scale in ((axes[0], "success", "success rate (%)", 100), (axes[1], "reward", "average reward", 1)):
        means = [scale * r[key][0] for r in rows]
        errors = [[scale * (r[key][0] - r[key][1]) for r in rows], [scale * (r[key][2] - r[key][0]) for r in rows]]
        ax.bar(names, means, yerr=errors, capsize=6, color=["#9aa5b1", "#4c78a8", "#f58518"][: len(rows)])
        ax.set_title(title)
        ax.set_ylim(bottom=0)
    fig.suptitle(f"{held_out} (95% bootstrap intervals)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


@task
def publish_comparison(stages: dict[str, str], links: dict[str, str], run_dir: Path, held_out: str,
                       harvest: dict[str, dict[str, int]] | None = None) -> list[dict[str, str]]:
    """Table artifact, markdown report with the plot and links to every dataset, Data Docs and adapter.
    `held_out` says what the stages were evaluated on; with no evaluation, the report only links.
    `harvest`: what each self-training round kept (dialogues, SFT rows, pairs), shown as a table of its own."""
    rows = comparison(stages) if stages else []
    table = display_rows(rows)
    title = "rounds of self-training" if harvest else " vs ".join(stages) or "datasets"
    lines = [f"# Self-training: {title}", f"Run folder `{run_dir.resolve()}`. Evaluated on: {held_out}.", ""]
    if harvest:
        columns = list(dict.fromkeys(k for counts in harvest.values() for k in counts))
        lines += ["Harvest per round (kept by curation):", "",
                  *markdown_table(["round", *columns], [(name, *(c.get(k, 0) for k in columns))
                                                        for name, c in harvest.items()]), ""]
    image = None
    if table:
        image = plot(rows, run_dir / "stages.png", held_out)
        create_table_artifact(table, key="pipeline-comparison", description=f"{title.capitalize()} on {held_out}")
        header = list(table[0])
        lines += ["{plot}", "", *markdown_table(header, [[r[h] for h in header] for r in table]), ""]
    links = {k: str(Path(v).resolve()) for k, v in links.items()}
    markdown = "\n".join([*lines, *markdown_table(["what", "where"], [(k, f"`{v}`") for k, v in links.items()])]) + "\n"
    # the UI shows the plot inline (the file is on the machine that ran the flow); report.md sits beside stages.png
    inline = f"![stages](data:image/png;base64,{base64.b64encode(image.read_bytes()).decode()})" if image else ""
    create_markdown_artifact(markdown.replace("{plot}", inline), key="pipeline-report", description="Self-training pipeline")
    (run_dir / "report.md").write_text(markdown.replace("{plot}", "![stages](stages.png)"))
    return table
