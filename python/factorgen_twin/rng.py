"""factorgen's seeded random numbers in Python: seedrandom's alea (Baagoe's Alea with the Mash seeding), bit-exact.

factorgen (packages/nn/src/rng.ts) draws data order and class-label dropout from ``new Rng(seed)`` = seedrandom's
``alea(seed)``; porting it lets the twin train on exactly the batches and label masks factorgen would (and resume a
factorgen run where it stopped). All arithmetic is in float64, as in JavaScript.
"""
from typing import List


def _mash_factory():
    n = 0xEFC8249D

    def mash(data: str) -> float:
        nonlocal n
        raw = data.encode("utf-16-le")
        # JavaScript strings are UTF-16: charCodeAt gives code units (seeds are ASCII in practice).
        for unit in (int.from_bytes(raw[i : i + 2], "little") for i in range(0, len(raw), 2)):
            n += unit
            h = 0.02519603282416938 * n
            n = float(int(h) % 4294967296)  # h >>> 0 (h >= 0)
            h -= n
            h *= n
            n = float(int(h) % 4294967296)
            h -= n
            n += h * 4294967296.0
        return (int(n) % 4294967296) * 2.3283064365386963e-10

    return mash


class Rng:
    """Uniform draws in [0, 1) identical to factorgen's ``new Rng(seed).next()`` sequence."""

    def __init__(self, seed: str):
        mash = _mash_factory()
        self.c = 1
        self.s0 = mash(" ")
        self.s1 = mash(" ")
        self.s2 = mash(" ")
        self.s0 -= mash(seed)
        if self.s0 < 0:
            self.s0 += 1
        self.s1 -= mash(seed)
        if self.s1 < 0:
            self.s1 += 1
        self.s2 -= mash(seed)
        if self.s2 < 0:
            self.s2 += 1

    def next(self) -> float:
        """Uniform in [0, 1)."""
        t = 2091639 * self.s0 + self.c * 2.3283064365386963e-10
        self.s0 = self.s1
        self.s1 = self.s2
        self.c = int(t)  # t | 0: t is in [0, 2^31)
        self.s2 = t - self.c
        return self.s2

    def int(self, n: int) -> int:
        """Uniform integer in [0, n)."""
        return int(self.next() * n)

    def permutation(self, n: int) -> List[int]:
        """Fisher-Yates permutation of [0, n), as factorgen's Rng.permutation."""
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.int(i + 1)
            p[i], p[j] = p[j], p[i]
        return p


_perm_cache: dict = {}


def epoch_permutation(n: int, epoch: int, seed: str) -> List[int]:
    """The shuffled order of epoch ``epoch``: Rng(f"{seed}/epoch{epoch}").permutation(n) (factorgen's batches.ts)."""
    key = (n, seed, epoch)
    if key not in _perm_cache:
        if len(_perm_cache) >= 4:
            _perm_cache.pop(next(iter(_perm_cache)))
        _perm_cache[key] = Rng(f"{seed}/epoch{epoch}").permutation(n)
    return _perm_cache[key]


def batch_indices(n: int, batch: int, step: int, seed: str) -> List[int]:
    """Dataset indices of training batch ``step`` (factorgen's batchIndices): stream positions [step*batch, (step+1)*batch)
    of the concatenated per-epoch permutations."""
    out = []
    for k in range(batch):
        pos = step * batch + k
        epoch = pos // n
        out.append(epoch_permutation(n, epoch, seed)[pos - epoch * n])
    return out
