"""Near-duplicate clusters over a batch of texts: MinHash signatures, LSH banding, union-find.

Texts are sets of word 3-gram shingles; two texts are near duplicates when their estimated
Jaccard similarity reaches the threshold. Banding (bands x rows of the signature) only
compares texts that share a band, so the cost grows with the number of texts, not its square.
Hashes are crc32 and a seeded permutation family: the same texts give the same clusters in
every process.
"""

from __future__ import annotations

import zlib
from collections import defaultdict

import numpy as np

PERMUTATIONS = 64
BANDS = 8  # 8 bands of 8 rows: texts with Jaccard >= ~0.77 share a band with high probability
_PRIME = np.uint64((1 << 31) - 1)  # h(x) = (a x + b) mod p, with a, b, x < p: a x + b fits in 64 bits
_rng = np.random.default_rng(0)
_A = _rng.integers(1, _PRIME, PERMUTATIONS, dtype=np.uint64)
_B = _rng.integers(0, _PRIME, PERMUTATIONS, dtype=np.uint64)


def shingles(text: str, n: int = 3) -> set[str]:
    words = text.lower().split()
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def signatures(texts: list[str]) -> np.ndarray:
    """(texts, PERMUTATIONS) MinHash signatures, computed for all texts in one vectorised pass."""
    hashed = [np.fromiter((zlib.crc32(s.encode()) for s in shingles(t)), dtype=np.uint64) % _PRIME for t in texts]
    if not hashed:
        return np.zeros((0, PERMUTATIONS), dtype=np.uint64)
    flat = np.concatenate(hashed)
    starts = np.cumsum([0] + [len(h) for h in hashed[:-1]])
    out = np.empty((len(texts), PERMUTATIONS), dtype=np.uint64)
    for k in range(PERMUTATIONS):
        out[:, k] = np.minimum.reduceat((_A[k] * flat + _B[k]) % _PRIME, starts)
    return out


def cluster_near_duplicates(texts: list[str], threshold: float = 0.8) -> list[int]:
    """For each text, the index of the first text of its cluster (itself when it has no near duplicate)."""
    sig = signatures(texts)
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows = PERMUTATIONS // BANDS
    for band in range(BANDS):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        for i, key in enumerate(sig[:, band * rows : (band + 1) * rows]):
            buckets[key.tobytes()].append(i)
        for members in buckets.values():
            for j in members[1:]:
                a, b = root(members[0]), root(j)
                if a != b and np.mean(sig[members[0]] == sig[j]) >= threshold:
                    parent[max(a, b)] = min(a, b)
    return [root(i) for i in range(len(texts))]
