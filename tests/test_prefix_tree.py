"""The prefix tree a local model reads prompts through: each shared prefix stored once, any-token matches, a byte
budget kept by dropping the least recently used branches. Plain tensors stand in for a model's states."""

from __future__ import annotations

import torch

from models.prefix_tree import PrefixTree

LAYERS, HEADS, DIM = 2, 3, 4
TOKEN_BYTES = 2 * LAYERS * HEADS * DIM * 4  # keys and values, float32


def states(ids: list[int]):
    """States that say which token they belong to (token id, position), so a wrong slice shows."""
    rows = torch.tensor([[t, p] for p, t in enumerate(ids)], dtype=torch.float32)
    block = rows.repeat(1, HEADS * DIM // 2).reshape(len(ids), HEADS, DIM).transpose(0, 1)[None]
    return [block + layer for layer in range(LAYERS)], [-block - layer for layer in range(LAYERS)]


def same(a, b) -> bool:
    return all(torch.equal(x, y) for part_a, part_b in zip(a, b) for x, y in zip(part_a, part_b))


def test_the_longest_stored_prefix_comes_back_to_any_token_and_shared_tokens_are_stored_once():
    tree = PrefixTree(max_bytes=10**9)
    system = list(range(100, 140))
    first, second = system + [1, 2, 3, 4], system + [1, 2, 9, 9, 9]
    tree.store(first, states(first))
    assert tree.bytes == len(first) * TOKEN_BYTES

    length, got = tree.longest(second + [7])  # shares the system prompt and two more tokens, then differs mid-node
    assert length == len(system) + 2 and same(got, states(second[:length]))
    tree.store(second, states(second))
    assert tree.bytes == (len(first) + 3) * TOKEN_BYTES  # only the three new tokens were added
    for ids in (first, second, first[:10]):
        length, got = tree.longest(ids)
        assert length == len(ids) and same(got, states(ids))
    next_turn = first + [5, 6]  # the conversation goes on: everything before is reused
    assert tree.longest(next_turn)[0] == len(first)
    assert tree.longest([999, 100]) is None
    assert tree.reused_tokens > 0


def test_over_its_budget_the_least_recently_used_branch_goes_and_the_shared_stem_stays():
    stem = list(range(50, 60))
    a, b, c = stem + [1] * 5, stem + [2] * 5, stem + [3] * 5
    tree = PrefixTree(max_bytes=(len(stem) + 10) * TOKEN_BYTES)
    tree.store(a, states(a))
    tree.store(b, states(b))
    tree.longest(a)  # a is used again: b is now the oldest
    tree.store(c, states(c))

    assert tree.bytes <= tree.max_bytes
    assert tree.longest(b)[0] == len(stem)  # b's own tokens went
    assert tree.longest(a)[0] == len(a) and tree.longest(c)[0] == len(c)
    off = PrefixTree(max_bytes=0)
    off.store(a, states(a))
    assert off.bytes == 0 and off.longest(a) is None
