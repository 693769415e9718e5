"""The citation check: every sentence of a written answer must be said by what it cites.

A model, small ones especially, writes fluent sentences its passages do not support: a
wrong number, a name from elsewhere, two facts fused, a citation pointing at the wrong
article. Each sentence of the reply is therefore read against the passages it cites
(``[n]``), and dropped, with the reason, when

- it cites nothing, or a passage that was not given;
- it holds a number or a name that none of its cited passages holds (names and numbers are
  what a news claim is about, and what a model gets wrong most);
- its wording and meaning are too far from every sentence of the cited passages: an
  IDF-weighted share of its content words found there, and its embedding's best cosine with
  a sentence (or two adjacent ones) of them, weighed into one score held to a threshold
  calibrated on a hand-labelled set (``tests/data/citation-check.jsonl``; README,
  *LLM-written answers*).

The check errs towards dropping: a dropped true sentence costs fluency, the extractive answer
is still there; a kept false one costs trust.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..embedding import Embedder
from ..selection import Vocabulary
from ..text import question_terms, split_sentences, terms
from .prompt import NOT_FOUND_REPLY, Passage

__all__ = ["CheckedReply", "CheckedSentence", "CitationChecker", "SupportFeatures", "read_reply"]

# [1], [1][2], [1, 2], [1-2]: the markers the prompt asks for.
_MARKER = re.compile(r"\s*\[(\d{1,2}(?:\s*[,;–-]\s*\d{1,2})*)\]")
_ONLY_MARKERS = re.compile(r"^\s*(\[\d{1,2}(?:\s*[,;–-]\s*\d{1,2})*\]\s*)+[.!?]?\s*$")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Spelled-out numbers as digits, from two: "one" is mostly a pronoun.
_NUMBER_WORDS = {
    word: str(i)
    for i, word in enumerate(
        ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"), 2
    )
}
_NEGATION = re.compile(r"\b(not|no|never|neither|nor|without|none)\b|n['’]t\b", re.IGNORECASE)
_NOT_FOUND = re.compile(
    rf"^\W*{NOT_FOUND_REPLY}\b|\b(passages|sources|articles) (do|does) not (answer|say|mention|"
    r"contain)|\bnot (found|mentioned) in the (passages|sources|articles)",
    re.IGNORECASE,
)

#: Score = _W_SIMILARITY · similarity + (1 − _W_SIMILARITY) · coverage, kept at ≥ THRESHOLD.
_W_SIMILARITY = 0.3
THRESHOLD = 0.72
_LOCAL_UNITS = 3


@dataclass(frozen=True, slots=True)
class SupportFeatures:
    """How a sentence relates to the passages it cites."""

    similarity: float  # best cosine with a cited sentence or two adjacent ones
    coverage: float  # IDF-weighted share of its content words found in the cited passages
    missing_names: tuple[str, ...]
    missing_numbers: tuple[str, ...]
    negation_differs: bool  # it negates and its best evidence does not, or the reverse

    @property
    def score(self) -> float:
        return _W_SIMILARITY * self.similarity + (1 - _W_SIMILARITY) * self.coverage


@dataclass(frozen=True, slots=True)
class CheckedSentence:
    """One sentence of the reply as checked; ``problem`` says why it is dropped."""

    text: str  # as written, without its markers
    cited: tuple[int, ...]
    problem: str | None = None
    support: float = 0.0
    evidence: tuple[tuple[int, str], ...] = ()  # (passage n, its sentence that supports it)

    @property
    def kept(self) -> bool:
        return self.problem is None


@dataclass(frozen=True, slots=True)
class CheckedReply:
    sentences: tuple[CheckedSentence, ...]
    not_found: bool  # the model said the passages do not answer

    @property
    def kept(self) -> tuple[CheckedSentence, ...]:
        return tuple(s for s in self.sentences if s.kept)

    @property
    def dropped(self) -> tuple[CheckedSentence, ...]:
        return tuple(s for s in self.sentences if not s.kept)


def read_reply(reply: str) -> tuple[list[tuple[str, tuple[int, ...]]], bool]:
    """The reply's sentences with the passage numbers each cites, and whether it says
    "not found". Markers alone on a line or after the full stop belong to the sentence
    before; list bullets and bold marks are dropped."""
    text = reply.replace("**", "").replace("__", "")
    lines = [_LIST_MARK.sub("", line) for line in text.splitlines()]
    text = "\n".join(lines)
    claims: list[tuple[str, tuple[int, ...]]] = []
    for span in split_sentences(text):
        sentence = text[span.start : span.end].strip()
        if _ONLY_MARKERS.match(sentence) and claims:
            before, cited = claims[-1]
            claims[-1] = (before, _union(cited, _numbers_in(sentence)))
            continue
        leading = re.match(r"^(\s*\[[\d,;–\- ]+\])+", sentence)
        if leading and claims and not claims[-1][1]:
            before, _ = claims[-1]
            claims[-1] = (before, _numbers_in(leading.group()))
            sentence = sentence[leading.end() :].strip()
        cited = _numbers_in(sentence)
        plain = " ".join(_MARKER.sub("", sentence).split())
        plain = re.sub(r"\s+([.,;:!?])", r"\1", plain)
        if plain.strip(" .") or cited:
            claims.append((plain, cited))
    said_not_found = bool(_NOT_FOUND.search(reply)) and not any(c for _, c in claims)
    return claims, said_not_found


class CitationChecker:
    """Checks replies against their passages with the embedder the index uses."""

    def __init__(self, embedder: Embedder, *, threshold: float = THRESHOLD) -> None:
        self.embedder = embedder
        self.threshold = threshold

    def check(
        self, reply: str, passages: Sequence[Passage], *, vocabulary: Vocabulary | None = None
    ) -> CheckedReply:
        """``vocabulary`` (the index's BM25 side) weighs words by rarity; else all weigh one."""
        claims, not_found = read_reply(reply)
        given = {p.n: p for p in passages}
        checked: list[CheckedSentence | None] = []
        to_measure: list[tuple[int, str, tuple[Passage, ...]]] = []
        for i, (text, cited) in enumerate(claims):
            unknown = [n for n in cited if n not in given]
            if not cited:
                checked.append(CheckedSentence(text, cited, "cites no passage"))
            elif unknown:
                which = ", ".join(f"[{n}]" for n in unknown)
                checked.append(CheckedSentence(text, cited, f"cites {which}, which was not given"))
            else:
                checked.append(None)
                to_measure.append((i, text, tuple(given[n] for n in cited)))
        for (i, text, cited_passages), (features, evidence) in zip(
            to_measure, self._measure([(t, p) for _, t, p in to_measure], vocabulary), strict=True
        ):
            cited = tuple(p.n for p in cited_passages)
            problem = _problem(features, cited, self.threshold)
            checked[i] = CheckedSentence(text, cited, problem, features.score, evidence)
        return CheckedReply(tuple(s for s in checked if s is not None), not_found)

    def _measure(
        self, items: Sequence[tuple[str, tuple[Passage, ...]]], vocabulary: Vocabulary | None
    ) -> list[tuple[SupportFeatures, tuple[tuple[int, str], ...]]]:
        if not items:
            return []
        # Each cited passage's sentences, embedded once per reply along with the claims, and
        # each pair of adjacent ones (a claim often joins two): a pair's vector is the
        # normalised sum of its sentences' (mean pooling makes it close to embedding the
        # pair, at no cost).
        sentences: dict[int, list[str]] = {}
        for _, cited in items:
            for passage in cited:
                if passage.n not in sentences:
                    sentences[passage.n] = [
                        passage.text[s.start : s.end] for s in split_sentences(passage.text)
                    ]
        singles_flat = [(n, text) for n, found in sentences.items() for text in found]
        vectors = self.embedder.embed_documents(
            [t for t, _ in items] + [t for _, t in singles_flat]
        )
        claims, single_vectors = vectors[: len(items)], vectors[len(items) :]
        flat = [(n, text, True) for n, text in singles_flat]
        pair_vectors = []
        for k in range(len(singles_flat) - 1):
            (n, a), (m, b) = singles_flat[k], singles_flat[k + 1]
            if n == m:
                flat.append((n, f"{a} {b}", False))
                pair = single_vectors[k] + single_vectors[k + 1]
                pair_vectors.append(pair / (np.linalg.norm(pair) or 1.0))
        unit_vectors = (
            np.vstack([single_vectors, *pair_vectors]) if pair_vectors else single_vectors
        )
        owners = np.array([n for n, _, _ in flat])
        singles = np.array([single for _, _, single in flat], dtype=bool)
        results = []
        for (text, cited), claim in zip(items, claims, strict=True):
            numbers = [p.n for p in cited]
            cosines = np.where(np.isin(owners, numbers), unit_vectors @ claim, -1.0)
            best = int(np.argmax(cosines))
            evidence = []
            for n in numbers:  # each cited passage's best sentence, for the citation's snippet
                own = np.where((owners == n) & singles, cosines, -np.inf)
                if np.isfinite(own).any():
                    evidence.append((n, flat[int(np.argmax(own))][1]))
            about = " ".join(_metadata(p) for p in cited)
            cited_text = about + " " + " ".join(p.text for p in cited)
            # What the claim says must be said in one place: its numbers and most of its words
            # within the few sentences closest to it, not scattered over the passage.
            closest = np.argsort(-cosines)[:_LOCAL_UNITS]
            local = " ".join(flat[k][1] for k in closest if cosines[k] > -1.0)
            features = _features(
                text,
                cited_text,
                about + " " + local,
                float(cosines[best]),
                flat[best][1],
                vocabulary,
            )
            results.append((features, tuple(evidence)))
        return results


def _features(
    sentence: str,
    cited_text: str,
    local: str,
    similarity: float,
    best: str,
    vocabulary: Vocabulary | None,
) -> SupportFeatures:
    have = set(terms(cited_text))
    near = set(terms(local))
    own = list(dict.fromkeys(terms(sentence)))
    weight = vocabulary.weight if vocabulary is not None else (lambda _: 1.0)
    total = sum(weight(t) for t in own) or 1.0
    coverage = sum(weight(t) for t in own if t in near) / total
    names = question_terms(sentence).names
    return SupportFeatures(
        similarity=max(0.0, similarity),
        coverage=coverage,
        missing_names=tuple(sorted(t for t in names if t not in have and not t.isdigit())),
        missing_numbers=tuple(sorted(_numbers(sentence) - _numbers(local))),
        negation_differs=bool(_NEGATION.search(sentence)) != bool(_NEGATION.search(best)),
    )


def _problem(features: SupportFeatures, cited: tuple[int, ...], threshold: float) -> str | None:
    where = "".join(f"[{n}]" for n in cited)
    if features.missing_numbers:
        return f"{', '.join(features.missing_numbers)}: not in {where}"
    if features.missing_names:
        return f"names {', '.join(features.missing_names)}: not in {where}"
    if features.score < threshold:
        return f"not supported by {where} (support {features.score:.2f} < {threshold:.2f})"
    if features.negation_differs and features.score < threshold + 0.15:
        return f"negation differs from {where}"
    return None


def _metadata(passage: Passage) -> str:
    """What the prompt said about the passage: title, source, date (spelled out)."""
    chunk = passage.chunk
    when = f"{chunk.published:%d %B %Y}" if chunk.published else ""
    return " ".join(p for p in (chunk.title, chunk.source or "", when) if p)


def _numbers(text: str) -> set[str]:
    found = {
        m.group().replace(",", "").rstrip(".").lstrip("0") or "0" for m in _NUMBER.finditer(text)
    }
    for word in re.findall(r"[A-Za-z]+", text):
        if word.lower() in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[word.lower()])
    return found


def _numbers_in(text: str) -> tuple[int, ...]:
    found: list[int] = []
    for group in _MARKER.findall(text):
        for a, _, b in re.findall(r"(\d+)(?:\s*([–-])\s*(\d+))?", group):
            found.extend(range(int(a), int(b) + 1) if b else [int(a)])
    return tuple(dict.fromkeys(found))


def _union(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(a + b))
