"""The scripted workflow client: the offline default customer of a workflow domain (no model behind it).

It answers the workflow step the agent's last utterance matches (ROUGE-L, as sub-goals are
tracked) with one of that step's reference answers, picked by a seeded draw; now and then it
goes off script, so the workflow manager's "none of the above" is exercised too. When the
agent said nothing it recognises, it asks again. Plain Python.
"""

from __future__ import annotations

import random

from envs.workflows.progress import SUBGOAL_THRESHOLD, best_match
from envs.workflows.workflow import Workflow

OFF_SCRIPT = ("Sorry, could you say that again?", "Hold on a second, let me check.", "Hmm, I am not sure what you mean.")
CLOSING = "Thank you, goodbye."


def client_turn(workflow: Workflow, agent_text: str, rng: random.Random, off_script: float,
                threshold: float = SUBGOAL_THRESHOLD) -> str:
    """The client's reply to the agent's last utterance."""
    ids = list(workflow.steps)
    match = best_match(agent_text, [workflow.steps[s].say for s in ids], threshold)
    if match is None:
        return rng.choice(OFF_SCRIPT)
    answers = workflow.edges(ids[match])
    if not answers:
        return CLOSING
    if rng.random() < off_script:
        return rng.choice(OFF_SCRIPT)
    return rng.choice(answers).answer
