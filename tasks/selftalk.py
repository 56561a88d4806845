"""Prefect tasks of the selftalk flow: scenarios (intentions x personas), self-talk dialogues per shard (cached on a
fingerprint), their datasets and the summary."""

from __future__ import annotations

import random
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from statistics import mean

from prefect import get_run_logger, task

from core.cache import by_fingerprint
from core.config import SelfTalkConfig
from core.fingerprint import code_fingerprint, stable_hash
from core.types import Dialogue, Message, Persona, Scenario
from envs.workflows import Workflow
from models.loading import load_model
from models.specs import model_fingerprint
from quality.dialogue_table import ENDED_PROPERLY, character_consistency
from quality.metrics import text_diversity
from roleplay import selftalk
from roleplay.harvest import chat
from tasks.run_report import publish_metrics, save_datasets
from tasks.retries import ENDPOINT_RETRIES


def scenarios(workflow: Workflow, drawn: list[Persona], n: int, seed: int) -> list[Scenario]:
    """Intentions in turn, each round with the next persona of a seeded shuffle: distinct pairs up to intentions x personas."""
    order = list(drawn)
    random.Random(seed).shuffle(order)
    k = len(workflow.intentions)
    return [Scenario(domain="workflow", task_id=f"{workflow.name}/{i % k}", instruction=workflow.intentions[i % k],
                     persona=order[(i // k) % len(order)] if order else None) for i in range(n)]


def selftalk_fingerprint(cfg: SelfTalkConfig, workflow: Workflow, shard: list[Scenario]) -> str:
    client = cfg.user.spec if cfg.user.scripted else model_fingerprint(cfg.user)
    models = [model_fingerprint(cfg.agent), client, model_fingerprint(cfg.manager) if cfg.manager else None]
    settings = cfg.model_dump(include={"agent_sampling", "user_sampling", "manager_sampling", "max_turns", "end_phrases",
                                       "subgoal_threshold", "off_script", "guided"})
    return stable_hash("selftalk", models, settings, workflow, [s.model_dump(mode="json") for s in shard],
                       code_fingerprint("roleplay.selftalk"))


@task(cache_key_fn=by_fingerprint, **ENDPOINT_RETRIES)
def selftalk_dialogues(cfg: SelfTalkConfig, workflow: Workflow, shard: list[Scenario], fingerprint: str) -> list[Dialogue]:
    """The conversations: every model call batches all live ones; one model serves every role set to the same config."""
    with ExitStack() as stack:
        loaded: dict[str, object] = {}

        def model(role_cfg):
            key = role_cfg.model_dump_json()
            if key not in loaded:
                loaded[key] = load_model(role_cfg)
                stack.callback(loaded[key].close)
            return loaded[key]

        client = selftalk.ScriptedClient(cfg.off_script) if cfg.user.scripted else selftalk.ModelClient(model(cfg.user))
        manager = selftalk.ModelManager(model(cfg.manager)) if cfg.manager else selftalk.RougeManager(cfg.subgoal_threshold)
        rules = selftalk.Rules(cfg.max_turns, tuple(cfg.end_phrases), cfg.subgoal_threshold, cfg.guided)
        sampling = {"agent": cfg.agent_sampling, "client": cfg.user_sampling, "manager": cfg.manager_sampling}
        return selftalk.run_selftalk([(s, workflow) for s in shard], model(cfg.agent), client, manager, sampling, rules)


def sft_rows(dialogues: list[Dialogue], workflow: Workflow) -> list[dict]:
    """Each conversation under the agent's workflow prompt (without the manager's instructions): curation picks which."""
    system = Message(role="system", content=selftalk.agent_system(workflow))
    return [{"scenario_id": d.id, "task_id": d.scenario.task_id, "reward": d.outcome.reward,
             "messages": chat([system, *d.messages])} for d in dialogues]


@task
def save_selftalk(dialogues: list[Dialogue], workflow: Workflow, run_dir: Path) -> dict[str, int]:
    """Dialogues and the SFT set; empty DPO / KTO sets, so curate and train read every run alike."""
    counts = save_datasets(run_dir, dialogues, {"sft": sft_rows(dialogues, workflow), "dpo": [], "kto": []})
    get_run_logger().info("saved %s to %s", counts, run_dir)
    return counts


def summary_rows(dialogues: list[Dialogue], cached: bool) -> list[dict[str, str]]:
    outcomes = [d.outcome for d in dialogues]
    said = [m.content for d in dialogues for m in d.messages if m.role == "assistant"]
    diversity = text_diversity(said)
    consistency = [c for d in dialogues if (c := character_consistency(d)) is not None]
    terminations = Counter(o.termination.value for o in outcomes)
    return [
        {"metric": "dialogues", "value": str(len(dialogues))},
        {"metric": "absolute depth (steps completed)", "value": f"{mean(o.workflow_steps for o in outcomes):.2f}"},
        {"metric": "relative depth", "value": f"{mean(o.workflow_depth for o in outcomes):.3f}"},
        {"metric": "ended rate", "value": f"{mean(o.termination in ENDED_PROPERLY for o in outcomes):.3f}"},
        {"metric": "reached a workflow end", "value": f"{mean(o.success for o in outcomes):.3f}"},
        {"metric": "agent turns per dialogue", "value": f"{mean(o.turns for o in outcomes):.2f}"},
        {"metric": "character consistency", "value": f"{mean(consistency):.3f}" if consistency else "n/a"},
        {"metric": "unique words / n-grams (n<=5)", "value": f"{diversity['unique_words']} / {diversity['unique_ngrams']}"},
        {"metric": "diversity (1 - mean pairwise ROUGE-L)", "value": f"{diversity['rouge_l_diversity']:.3f}"},
        {"metric": "terminations", "value": ", ".join(f"{k}: {v}" for k, v in sorted(terminations.items()))},
        {"metric": "cached", "value": str(cached)},
    ]


@task
def publish_summary(rows: list[dict[str, str]], cfg: SelfTalkConfig, run_dir: Path) -> Path:
    title = f"Self-talk: `{cfg.agent.spec}` vs client `{cfg.user.spec}` on workflow `{cfg.workflow}`"
    return publish_metrics(rows, cfg, run_dir, "selftalk", title)
