"""How far a conversation got through its workflow (Self-talk's sub-goal completion).

An agent utterance completes the workflow step it matches best when their ROUGE-L F-measure
(rouge-score, no stemming) is at least the threshold (0.33 in the paper). Absolute depth is
how many distinct steps were completed; relative depth divides it by the steps on the
workflow's longest path, so a conversation that walked a full branch scores 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from envs.workflows.workflow import Workflow

SUBGOAL_THRESHOLD = 0.33


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(candidate: str, reference: str) -> float:
    return _scorer().score(reference, candidate)["rougeL"].fmeasure


def best_match(candidate: str, references: Sequence[str], threshold: float) -> int | None:
    """Index of the reference the candidate matches best, when it clears the threshold; else None."""
    scores = [rouge_l(candidate, r) for r in references]
    best = max(range(len(scores)), key=scores.__getitem__, default=None)
    return best if best is not None and scores[best] >= threshold else None


def completed_steps(workflow: Workflow, agent_utterances: Sequence[str], threshold: float = SUBGOAL_THRESHOLD) -> list[int]:
    """The workflow steps the agent said, in the order first said."""
    ids = list(workflow.steps)
    says = [workflow.steps[s].say for s in ids]
    done: list[int] = []
    for text in agent_utterances:
        match = best_match(text, says, threshold)
        if match is not None and ids[match] not in done:
            done.append(ids[match])
    return done


def depth(workflow: Workflow, agent_utterances: Sequence[str], threshold: float = SUBGOAL_THRESHOLD) -> tuple[int, float]:
    """(absolute depth, relative depth) of one conversation."""
    steps = len(completed_steps(workflow, agent_utterances, threshold))
    return steps, min(1.0, steps / workflow.longest_path)
