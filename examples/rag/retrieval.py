"""A small BM25 index over a question's paragraphs: what the agent's ``retrieve`` tool searches.

Written here (about 40 lines) rather than taken from ``rank-bm25`` for two reasons: the agent side of an
example should install nothing beyond its framework, and rank-bm25's Okapi variant floors the IDF of
terms that occur in more than half the documents to a small epsilon, which on a 10-20 paragraph index
(MuSiQue gives 20 per question) makes frequent-but-relevant words such as a repeated surname behave
oddly. This uses the Lucene/BM25+ style IDF ``ln(1 + (N - n + 0.5) / (n + 0.5))``, always positive, with
the usual ``k1 = 1.5``, ``b = 0.75``. Ties keep the paragraphs' original order, so results are
deterministic.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

_TOKEN = re.compile(r"[a-z0-9]+")
# A short English stop list: without it "the"/"of" dominate queries such as "the founder of X".
STOPWORDS = frozenset(
    "a an and are as at be by did does do for from has have he her his in is it its of on or she "
    "that the their they this to was were what when where which who whom whose why with how".split())


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric words without stop words (also used for queries)."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


@dataclass(frozen=True)
class Hit:
    idx: int        # the paragraph's ``idx`` in the MuSiQue record
    title: str
    text: str
    score: float


class BM25Index:
    """Okapi BM25 over ``(idx, title, text)`` documents; the title is indexed with the text."""

    def __init__(self, documents: Iterable[tuple[int, str, str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.docs = list(documents)
        self.k1, self.b = k1, b
        self._tf = [Counter(tokenize(f"{title} {text}")) for _, title, text in self.docs]
        lengths = [sum(tf.values()) for tf in self._tf]
        self._len = lengths
        self._avg = (sum(lengths) / len(lengths)) if lengths else 0.0
        df: Counter = Counter()
        for tf in self._tf:
            df.update(tf.keys())
        n = len(self.docs)
        self._idf = {term: math.log(1.0 + (n - k + 0.5) / (k + 0.5)) for term, k in df.items()}

    @classmethod
    def from_paragraphs(cls, paragraphs: Sequence[dict], **kwargs: float) -> "BM25Index":
        """From MuSiQue paragraph dicts (``idx``, ``title``, ``paragraph_text``)."""
        return cls(((int(p.get("idx", i)), str(p.get("title", "")), str(p.get("paragraph_text", "")))
                    for i, p in enumerate(paragraphs)), **kwargs)

    def scores(self, query: str) -> list[float]:
        terms = tokenize(query)
        out = []
        for tf, length in zip(self._tf, self._len):
            norm = self.k1 * (1.0 - self.b + self.b * length / self._avg) if self._avg else self.k1
            out.append(sum(self._idf[t] * tf[t] * (self.k1 + 1.0) / (tf[t] + norm) for t in terms if t in tf))
        return out

    def search(self, query: str, k: int = 2) -> list[Hit]:
        """The ``k`` best paragraphs with a positive score, best first (ties: original order)."""
        scored = sorted(enumerate(self.scores(query)), key=lambda pair: (-pair[1], pair[0]))
        return [Hit(self.docs[i][0], self.docs[i][1], self.docs[i][2], s) for i, s in scored[:k] if s > 0.0]
