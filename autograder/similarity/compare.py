"""Which pairs of submissions share answer code that is not shared by everyone.

Fingerprints are copydetect's winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003):
every k-gram of the reduced code (``normalize``) is hashed and, of each window of
``window`` consecutive hashes, the smallest is kept, so any match of at least
``noise + window - 1`` reduced characters is found and none shorter than ``noise``. The
hashes of the shared code (``shared``, every k-gram of it) are taken out first, so only a
student's own code can match. Pairs are found through an index of the hashes, not by
comparing every pair.

A pair's score is the larger of its two sides: the share of one submission's own code (the
reduced characters its fingerprints cover, over all parts) that matches the other. A side
with less than ``min_chars`` of its own code is too small to judge and is not scored.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations

from .normalize import Normalized, normalize

__all__ = ["Params", "Fingerprint", "PartMatch", "Pair", "fingerprint", "shared_hashes",
           "find_pairs"]


@dataclass(frozen=True)
class Params:
    noise: int = 25          # k: no match shorter than this many reduced characters counts
    guarantee: int = 30      # every match this long is found (window = guarantee - k + 1)
    threshold: float = 0.5   # pairs scoring at least this are reported
    min_chars: int = 50      # a side with less own code than this is not scored

    @property
    def window(self) -> int:
        return self.guarantee - self.noise + 1


@dataclass(frozen=True)
class Fingerprint:
    """One part of one submission: its reduced code, kept hashes and coverage."""

    code: Normalized
    hashes: frozenset
    where: dict          # hash -> indices in code.text
    coverage: int        # reduced characters covered by the kept hashes


@dataclass(frozen=True)
class PartMatch:
    answer_id: str
    similarity: tuple[float, float]                 # matched share of each side's own code
    ranges: tuple[tuple[tuple[int, int], ...], ...]  # per side: matched stretches of its code


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    score: float
    sides: tuple[float, float]
    parts: tuple[PartMatch, ...]


def _utils():
    from copydetect import utils  # imports matplotlib: only when similarity runs

    return utils


def shared_hashes(pieces, params: Params) -> frozenset:
    """Every k-gram hash of the shared code."""
    utils = _utils()
    out: set = set()
    for piece in pieces:
        text = normalize(piece).text
        if len(text) >= params.noise:
            out.update(utils.hashed_kgrams(text, params.noise).tolist())
    return frozenset(out)


def _shared_mask(text: str, shared: frozenset, params: Params):
    """For each reduced character: is it inside some k-gram of the shared code?"""
    import numpy as np

    mask = np.zeros(len(text), dtype=bool)
    if len(text) >= params.noise:
        for i, h in enumerate(_utils().hashed_kgrams(text, params.noise).tolist()):
            if h in shared:
                mask[i:i + params.noise] = True
    return mask


def fingerprint(code: str, shared: frozenset, params: Params) -> Fingerprint:
    """The kept hashes of ``code``: winnowed, less every k-gram made only of shared code
    (one in the shared code, and one spanning two shared pieces pasted one after the
    other, which two students who paste the same textbook functions both have)."""
    utils = _utils()
    reduced = normalize(code)
    hashes, where = utils.get_document_fingerprints(reduced.text, params.noise,
                                                    params.window, None)
    mask = _shared_mask(reduced.text, shared, params)
    own = {h: [i for i in where[h] if not mask[i:i + params.noise].all()]
           for h in hashes if h not in shared}
    where = {h: idx for h, idx in own.items() if idx}
    kept = frozenset(where)
    coverage = int(utils.get_token_coverage(where, params.noise, len(reduced.text)))
    return Fingerprint(reduced, kept, where, coverage)


def _match(x: Fingerprint, y: Fingerprint, params: Params):
    """Matched reduced characters and the matched raw stretches of each side."""
    utils = _utils()
    ix, iy = utils.find_fingerprint_overlap(x.hashes, y.hashes, x.where, y.where)
    if len(ix) == 0:
        return (0, 0), ((), ())
    counts, ranges = [], []
    for fp, idx in ((x, ix), (y, iy)):
        starts, ends = utils.get_copied_slices(idx, params.noise)
        counts.append(int(sum(e - s for s, e in zip(starts, ends, strict=True))))
        ranges.append(tuple(fp.code.raw_range(int(s), int(e))
                            for s, e in zip(starts, ends, strict=True)))
    return tuple(counts), tuple(ranges)


def _candidates(prints: dict[str, dict[str, Fingerprint]]) -> set[tuple[str, str]]:
    """Pairs of keys that share at least one kept hash in some part."""
    index: dict[tuple[str, int], list[str]] = defaultdict(list)
    for key, parts in prints.items():
        for aid, fp in parts.items():
            for h in fp.hashes:
                index[(aid, h)].append(key)
    pairs: set[tuple[str, str]] = set()
    for keys in index.values():
        pairs.update(combinations(sorted(set(keys)), 2))
    return pairs


def _pair(a: str, b: str, prints: dict[str, dict[str, Fingerprint]],
          params: Params) -> Pair | None:
    matched, parts = [0, 0], []
    for aid in sorted(set(prints[a]) & set(prints[b])):
        x, y = prints[a][aid], prints[b][aid]
        counts, ranges = _match(x, y, params)
        if counts[0]:
            parts.append(PartMatch(aid, (counts[0] / x.coverage, counts[1] / y.coverage),
                                   ranges))
            matched = [matched[0] + counts[0], matched[1] + counts[1]]
    own = [sum(fp.coverage for fp in prints[k].values()) for k in (a, b)]
    sides = tuple(m / o if o else 0.0 for m, o in zip(matched, own, strict=True))
    judged = [s for s, o in zip(sides, own, strict=True) if o >= params.min_chars]
    if not parts or not judged:
        return None
    return Pair(a, b, round(max(judged), 4), (round(sides[0], 4), round(sides[1], 4)),
                tuple(parts))


def find_pairs(prints: dict[str, dict[str, Fingerprint]], params: Params,
               same_student=lambda a, b: False) -> list[Pair]:
    """The pairs scoring at least ``params.threshold``, highest first; two files of one
    student (``same_student``) are not a pair."""
    pairs = [p for a, b in _candidates(prints) if not same_student(a, b)
             for p in [_pair(a, b, prints, params)] if p and p.score >= params.threshold]
    return sorted(pairs, key=lambda p: (-p.score, p.a, p.b))
