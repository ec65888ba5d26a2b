"""Search terms that work in every language OMO speaks, Chinese and Japanese included.

Chinese and Japanese are written without spaces, so a word tokenizer sees a whole sentence as
one "word", and a trigram index cannot answer the two-character words these languages are
made of (東京, 咖啡). We index what CJK search engines index (Lucene's CJK analyzer does the
same): every CJK character and every pair of neighbouring CJK characters, plus whole words for
the scripts that use spaces. A query is cut the same way and every term must be present;
`matches` then checks the CJK runs as real substrings, so 東京都 does not match a text that
only has 東京 and 京都 apart.

The same terms feed SQLite FTS5 (unicode61 tokenizer) and PostgreSQL full-text search
(`to_tsvector('simple', …)`), so both backends answer the same query the same way.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Hiragana, katakana (full and half width), CJK ideographs and their extensions, Hangul.
_CJK = re.compile(
    "[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\uac00-\ud7af\uff66-\uff9f\U00020000-\U0002fa1f]+"
)
_WORD = re.compile(r"\w+")
MAX_QUERY_TERMS = 32


def normalise(text: str) -> str:
    """Full-width to half-width, compatibility forms folded, case folded (accents are kept
    here; words lose theirs when cut into terms)."""
    return unicodedata.normalize("NFKC", text).casefold()


def _unaccented(word: str) -> str:
    # Only for words of space-separated scripts: in Japanese a voicing mark changes the word.
    if word.isascii():
        return word  # nothing to decompose (every chat message is cut into terms)
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def _split(text: str) -> tuple[list[str], list[str]]:
    """(words of space-separated scripts, CJK runs) of a normalised text."""
    if text.isascii():
        return _WORD.findall(text), []  # no CJK, no accents: the common case, made cheap
    words: list[str] = []
    runs: list[str] = []
    for word in _WORD.findall(text):
        position = 0
        for run in _CJK.finditer(word):
            if run.start() > position:
                words.append(_unaccented(word[position : run.start()]))
            runs.append(run.group())
            position = run.end()
        if position < len(word):
            words.append(_unaccented(word[position:]))
    return words, runs


def _grams(run: str, *, unigrams: bool) -> list[str]:
    pairs = [run[i : i + 2] for i in range(len(run) - 1)]
    if len(run) == 1 or unigrams:
        return list(run) + pairs
    return pairs


def index_terms(text: str) -> str:
    """The text to store in the search index for `text` (space-separated terms)."""
    words, runs = _split(normalise(text))
    terms = dict.fromkeys(words)
    for run in runs:
        terms.update(dict.fromkeys(_grams(run, unigrams=True)))
    return " ".join(terms)


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed search query: the terms the index must hold, and the CJK runs to confirm."""

    words: tuple[str, ...]
    runs: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Query:
        words, runs = _split(normalise(text))
        return cls(tuple(dict.fromkeys(words)), tuple(dict.fromkeys(runs)))

    @property
    def empty(self) -> bool:
        return not self.words and not self.runs

    def terms(self) -> list[str]:
        grams = [g for run in self.runs for g in _grams(run, unigrams=False)]
        return list(dict.fromkeys([*grams]))[:MAX_QUERY_TERMS]

    def fts5(self) -> str:
        """An FTS5 MATCH expression: every term, words as prefixes (search as you type)."""
        quoted = [f'"{term}"' for term in self.terms()]
        quoted += [f'"{word}"*' for word in self.words[:MAX_QUERY_TERMS]]
        return " ".join(quoted)

    def tsquery(self) -> str:
        """A PostgreSQL `to_tsquery('simple', …)` expression with the same meaning."""
        quoted = [_pg_quote(term) for term in self.terms()]
        quoted += [_pg_quote(word) + ":*" for word in self.words[:MAX_QUERY_TERMS]]
        return " & ".join(quoted)

    def matches(self, text: str) -> bool:
        """Whether `text` really holds the query (the index narrows, this decides)."""
        normal = normalise(text)
        return all(run in normal for run in self.runs)


def _pg_quote(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"
