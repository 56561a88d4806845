"""Attention states of every token sequence a local model has read, in a radix tree, so that no prefix is computed
twice while it is kept.

A conversation's next prompt is its last prompt plus what the model answered and a few new messages; JOSH siblings
share everything before their turn; every dialogue of a run starts with the same system prompt. A tree over token
ids holds each of those shared prefixes once: a lookup returns the states of the longest stored prefix of a prompt
(to any token, not only at a message's end), and storing a prompt adds only its tokens that were not there yet.
Least recently used leaves go when the tree holds more than its byte budget. Plain torch; no model here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

States = tuple[list[torch.Tensor], list[torch.Tensor]]  # keys and values per layer, each [1, heads, tokens, dim]


class _Node:
    __slots__ = ("tokens", "keys", "values", "children", "parent", "used")

    def __init__(self, tokens: tuple[int, ...], keys: list[torch.Tensor], values: list[torch.Tensor],
                 parent: "_Node | None"):
        self.tokens, self.keys, self.values, self.parent = tokens, keys, values, parent
        self.children: dict[int, _Node] = {}
        self.used = 0

    @property
    def bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in itertools.chain(self.keys, self.values))


class PrefixTree:
    """States by token prefix, shared between the sequences that start alike; `max_bytes` = 0 keeps nothing."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.clear()

    def clear(self) -> None:
        self.root = _Node((), [], [], None)
        self.bytes = 0
        self.reused_tokens = 0  # tokens whose states a lookup returned instead of their being computed again
        self._clock = itertools.count(1)

    def longest(self, ids: Sequence[int]) -> tuple[int, States] | None:
        """The length of the longest stored prefix of `ids` and its states (a copy), or None if nothing matches."""
        path = self._walk(ids)
        length = sum(used for _, used in path)
        if not length:
            return None
        self.reused_tokens += length
        now = next(self._clock)
        for node, _ in path:
            node.used = now
        layers = range(len(path[0][0].keys))
        keys = [torch.cat([node.keys[k][:, :, :used] for node, used in path], dim=2) for k in layers]
        values = [torch.cat([node.values[k][:, :, :used] for node, used in path], dim=2) for k in layers]
        return length, (keys, values)

    def store(self, ids: Sequence[int], states: States) -> None:
        """Keep the states of `ids` (states[.][:, :, i] belongs to ids[i]); only the part not stored yet is copied."""
        if not ids or self.max_bytes == 0:
            return
        ids = tuple(ids)
        node, pos, now = self.root, 0, next(self._clock)
        for child, used in self._walk(ids):
            if used < len(child.tokens):
                self._split(child, used)
            node, pos = child, pos + used
            node.used = now
        if pos < len(ids):
            keys, values = ([s[:, :, pos : len(ids)].clone() for s in part] for part in states)
            leaf = _Node(ids[pos:], keys, values, node)
            leaf.used = now
            node.children[ids[pos]] = leaf
            self.bytes += leaf.bytes
        self._evict()

    def _walk(self, ids: Sequence[int]) -> list[tuple[_Node, int]]:
        """The nodes along `ids` and how many of each one's tokens match; the last may match in part."""
        path, node, pos = [], self.root, 0
        while pos < len(ids) and (child := node.children.get(ids[pos])) is not None:
            span = child.tokens
            used = next((k for k, (a, b) in enumerate(zip(span, ids[pos : pos + len(span)])) if a != b),
                        min(len(span), len(ids) - pos))
            path.append((child, used))
            if used < len(span):
                break
            node, pos = child, pos + used
        return path

    def _split(self, node: _Node, at: int) -> None:
        """`node` keeps its first `at` tokens; a new child holds the rest and takes over its children."""
        rest = _Node(node.tokens[at:], [k[:, :, at:].clone() for k in node.keys],
                     [v[:, :, at:].clone() for v in node.values], node)
        rest.children, rest.used = node.children, node.used
        for child in rest.children.values():
            child.parent = rest
        node.tokens = node.tokens[:at]
        node.keys = [k[:, :, :at].clone() for k in node.keys]
        node.values = [v[:, :, :at].clone() for v in node.values]
        node.children = {rest.tokens[0]: rest}

    def _evict(self) -> None:
        """Drop the least recently used leaves until the tree fits its budget (a parent left bare is a leaf next)."""
        if self.bytes <= self.max_bytes:
            return
        leaves = [n for n in self._nodes() if not n.children]
        while self.bytes > self.max_bytes and leaves:
            leaf = min(leaves, key=lambda n: n.used)
            leaves.remove(leaf)
            del leaf.parent.children[leaf.tokens[0]]
            self.bytes -= leaf.bytes
            if leaf.parent is not self.root and not leaf.parent.children:
                leaves.append(leaf.parent)

    def _nodes(self):
        todo = [self.root]
        while todo:
            node = todo.pop()
            todo += node.children.values()
            if node is not self.root:
                yield node
