"""JOSH: beam search over agent turns, rewarded sparsely by the environment (Lattimer et al. 2024).

Each turn, every live leaf splits in two while 2 x live leaves <= beam_size, and every leaf
takes its agent turn. The first leaf (in order) whose actions earned a sub-goal not yet
earned becomes the new root: every other branch is cut and the search goes on from it.
It stops when every sub-goal is earned or every branch has ended. Every agent turn is kept
as a node (messages, is_successful, is_golden) for the SFT and preference builders.

Many trees are searched in lockstep, so each model call is one batch over every leaf of
every tree waiting for that role: local models generate them together, API backends send
them concurrently. Plain Python: no Prefect here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


from core.config import SamplingConfig
from core.types import JoshTree, Termination, TreeNode, Usage
from models.base import ChatModel
from roleplay.lockstep import lockstep
from roleplay.rollout import Episode, take_turns
from roleplay.users import UserSimulator, as_user


@dataclass
class _Node:
    messages: tuple
    turn_start: int
    successful: bool = False


@dataclass
class _Leaf:
    episode: Episode
    path: list[int] = field(default_factory=list)  # node ids of this branch's agent turns, oldest first


class Search:
    """The beam tree of one scenario."""

    def __init__(self, episode: Episode, beam_size: int):
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        self.beam_size = beam_size
        self.leaves = [_Leaf(episode)]
        self.nodes: list[_Node] = []
        self.earned = tuple(episode.env.reward().earned)
        self.done = False
        self.tokens = {"agent": [0, 0], "user": [0, 0]}  # role -> [prompt, completion], every branch

    def live(self) -> list[_Leaf]:
        return [leaf for leaf in self.leaves if not leaf.episode.done]

    def split(self) -> None:
        """Double the live leaves if the beam has room; the copies diverge when the agent samples."""
        live = self.live()
        if 2 * len(live) <= self.beam_size:
            twins = [_Leaf(leaf.episode.fork(), list(leaf.path)) for leaf in live]
            self.leaves = [x for pair in zip(live, twins) for x in pair] + [x for x in self.leaves if x.episode.done]

    def record_turns(self, starts: dict[int, int]) -> None:
        """A node for each leaf that just took its agent turn (`starts`: id(leaf) -> record length before it)."""
        for leaf in self.leaves:
            if id(leaf) in starts:
                self.nodes.append(_Node(tuple(leaf.episode.record), starts[id(leaf)]))
                leaf.path.append(len(self.nodes) - 1)

    def settle(self) -> None:
        """Collapse onto the first leaf that earned something new; stop when all is earned or all ended."""
        for leaf in self.leaves:
            earned = tuple(leaf.episode.env.reward().earned)
            if any(new and not old for new, old in zip(earned, self.earned)):
                self.earned, self.leaves = earned, [leaf]
                for i in leaf.path:
                    self.nodes[i].successful = True
                if all(earned):
                    if not leaf.episode.done:
                        leaf.episode.finish(Termination.all_rewards_earned)
                    self.done = True
                break
        if not self.live():
            self.done = True

    def result(self, agent_model: str = "", user_model: str = "") -> JoshTree:
        """The settled path (the best leaf; the golden path when everything was earned) and all nodes."""
        best = max(self.leaves, key=lambda leaf: leaf.episode.env.reward().reward)  # first among ties
        golden = set(best.path) if all(self.earned) and self.earned else set()
        nodes = tuple(
            TreeNode(messages=n.messages, turn_start=n.turn_start, is_successful=n.successful, is_golden=i in golden)
            for i, n in enumerate(self.nodes)
        )
        return JoshTree(dialogue=best.episode.to_dialogue(agent_model, user_model), nodes=nodes,
                        agent_usage=Usage(prompt_tokens=self.tokens["agent"][0], completion_tokens=self.tokens["agent"][1]),
                        user_usage=Usage(prompt_tokens=self.tokens["user"][0], completion_tokens=self.tokens["user"][1]))


def run_josh(
    searches: list[Search],
    agent: ChatModel,
    user: UserSimulator | ChatModel,
    agent_sampling: SamplingConfig,
    user_sampling: SamplingConfig,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[JoshTree]:
    """Search all trees to the end; every round is one user call and a few agent calls, each batched over all leaves."""
    user = as_user(user)

    def one_round(active: list[Search]) -> None:
        _step(agent, user, user_sampling, [(s, leaf.episode) for s in active for leaf in s.live() if leaf.episode.waiting_for == "user"])
        starts = {}
        for s in active:
            s.split()
            starts.update({id(leaf): len(leaf.episode.record) for leaf in s.live()})
        while waiting := [(s, leaf.episode) for s in active for leaf in s.leaves if leaf.episode.waiting_for == "agent"]:
            _step(agent, user, agent_sampling, waiting)
        for s in active:
            s.record_turns(starts)
            s.settle()

    lockstep(searches, lambda s: s.done, one_round, "JOSH trees", "tree", on_progress)
    return [s.result(agent.spec, user.spec) for s in searches]


def _step(agent: ChatModel, user: UserSimulator, sampling: SamplingConfig, waiting: list[tuple[Search, Episode]]) -> None:
    """One batched call for every episode waiting for the same role; tokens counted per tree."""
    if not waiting:
        return
    role = waiting[0][1].waiting_for
    for (search, _), gen in zip(waiting, take_turns([e for _, e in waiting], agent, user, sampling)):
        search.tokens[role][0] += gen.prompt_tokens
        search.tokens[role][1] += gen.completion_tokens
