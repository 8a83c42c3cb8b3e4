"""A search query: parsed from what a person types, written as FTS5 and tsquery, and marked in text.

The syntax is the same on both backends and small enough to explain in one line: words (all must
appear), ``"a phrase"``, ``prefix*``, ``a OR b``, ``-excluded``. Letters and digits make words;
other characters separate them, so ``order #42?`` is the words ``order`` and ``42``. The query
handed to the database is built here from the parsed words, each one quoted, so nothing a person
types reaches the database's own query syntax: a malformed query is a ``SearchQueryError`` that
names it and the fix, never an SQL error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .._errors import SearchQueryError

__all__ = ["Query", "Term", "mark", "parse_query", "words"]

#: a word: a run of letters and digits (the tokenizers index the same: FTS5's unicode61, and
#: PostgreSQL's ``simple`` configuration over the text with ASCII punctuation made spaces)
_WORD = re.compile(r"[^\W_]+")
_ITEM = re.compile(r'\s+|(-?)"([^"]*)("?)(\*?)|(\S+?)(?=\s|"|$)')
_MAX_TERMS = 64
_MAX_CHARS = 1000

SYNTAX = 'words (all must appear), "a phrase", prefix*, a OR b, -excluded'


def words(text: str) -> list[str]:
    """The words of ``text`` as the index holds them (lower case)."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True, slots=True)
class Term:
    """One word, or a phrase of words in order; ``prefix``: its last word may go on."""

    words: tuple[str, ...]
    prefix: bool = False

    def fts5(self) -> str:
        return '"' + " ".join(self.words) + '"' + ("*" if self.prefix else "")

    def found_in(self, found: list[str]) -> bool:
        """Whether the words ``found`` (of a text, in order) hold this term."""
        *head, last = self.words
        for i in range(len(found) - len(head)):
            end = found[i + len(head)]
            if found[i : i + len(head)] == head and (end == last or (self.prefix and end.startswith(last))):
                return True
        return False

    def tsquery(self) -> str:
        quoted = [f"'{w}'" for w in self.words]
        if self.prefix:
            quoted[-1] += ":*"
        return quoted[0] if len(quoted) == 1 else "(" + " <-> ".join(quoted) + ")"


@dataclass(frozen=True, slots=True)
class Query:
    """All of ``clauses`` (each: any of its terms), none of ``excluded``."""

    text: str
    clauses: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...] = ()

    def fts5(self) -> str:
        """The query as an FTS5 MATCH expression (every word quoted)."""
        found = " AND ".join("(" + " OR ".join(t.fts5() for t in c) + ")" for c in self.clauses)
        if self.excluded:
            found += " NOT (" + " OR ".join(t.fts5() for t in self.excluded) + ")"
        return found

    def tsquery(self) -> str:
        """The query as PostgreSQL's ``to_tsquery('simple', ...)`` takes it (every word quoted)."""
        found = " & ".join("(" + " | ".join(t.tsquery() for t in c) + ")" for c in self.clauses)
        for t in self.excluded:
            found += f" & !{t.tsquery()}"
        return found

    def terms(self) -> list[Term]:
        """The terms a match shows (the excluded ones are not in it)."""
        return [t for c in self.clauses for t in c]

    def matches(self, text: str) -> bool:
        """Whether ``text`` matches, as the index would say (for messages not indexed yet)."""
        found = words(text)
        return all(any(t.found_in(found) for t in c) for c in self.clauses) and not any(
            t.found_in(found) for t in self.excluded
        )


def _error(query: str, problem: str, fix: str) -> SearchQueryError:
    return SearchQueryError(f"search query {query!r} {problem}; expected {SYNTAX}. {fix}")


def parse_query(query: object) -> Query:
    """``query`` parsed, or a ``SearchQueryError`` naming it, what was expected and the fix."""
    if not isinstance(query, str):
        raise SearchQueryError(f"query={query!r} is not valid; expected a str, e.g. 'refund order'.")
    if len(query) > _MAX_CHARS:
        raise _error(
            query[:40] + "…", f"is {len(query):,} characters long (at most {_MAX_CHARS:,})", "Search for a few words."
        )
    items: list[tuple[str, Term | None, bool]] = []  # ("term", term, negated) | ("or", None, False)
    for m in _ITEM.finditer(query):
        if m.group(0).isspace():
            continue
        if m.group(5) is not None:  # a bare item
            bare = m.group(5)
            if bare == "OR":
                items.append(("or", None, False))
                continue
            negated = bare.startswith("-") and len(bare) > 1
            body = bare[1:] if negated else bare
            prefix = body.endswith("*") and bool(_WORD.search(body[-2:-1] or ""))
            found = words(body)
            if found:
                items.append(("term", Term(tuple(found), prefix), negated))
            continue
        negated, phrase, closed, star = m.group(1), m.group(2), m.group(3), m.group(4)
        if not closed:
            fix = 'Close the phrase, e.g. "refund policy", or remove the quote.'
            raise _error(query, 'has a quote (") that is not closed', fix)
        found = words(phrase)
        if found:
            items.append(("term", Term(tuple(found), bool(star)), bool(negated)))
    clauses: list[list[Term]] = []
    excluded: list[Term] = []
    joining = False
    for i, (kind, term, negated) in enumerate(items):
        if kind == "or":
            before_ok = i > 0 and items[i - 1][0] == "term" and not items[i - 1][2]
            after_ok = i + 1 < len(items) and items[i + 1][0] == "term" and not items[i + 1][2]
            if not (before_ok and after_ok):
                raise _error(
                    query,
                    "has an OR without a word to find on each side",
                    "Write OR between two terms, e.g. 'refund OR return' (OR cannot join an excluded -term); "
                    "to find the word itself, write it in lower case: 'or'.",
                )
            joining = True
            continue
        assert term is not None
        if negated:
            excluded.append(term)
        elif joining:
            clauses[-1].append(term)
        else:
            clauses.append([term])
        joining = False
    if not clauses:
        problem = "has only excluded terms" if excluded else "has no words to search for"
        raise _error(query, problem, "Add a word to find, e.g. 'refund' or 'refund -shipping'.")
    if sum(len(c) for c in clauses) + len(excluded) > _MAX_TERMS:
        raise _error(query, f"has more than {_MAX_TERMS} terms", "Search for fewer words.")
    return Query(query, tuple(tuple(c) for c in clauses), tuple(excluded))


def _pattern(query: Query) -> re.Pattern[str]:
    alternatives = set()
    for term in query.terms():
        for i, word in enumerate(term.words):
            last = i == len(term.words) - 1
            alternatives.add(re.escape(word) + (r"[^\W_]*" if term.prefix and last else ""))
    ordered = sorted(alternatives, key=len, reverse=True)
    return re.compile(r"(?<![^\W_])(?:" + "|".join(ordered) + r")(?![^\W_])", re.IGNORECASE)


def mark(text: str, query: Query, *, width: int = 200) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A plain-text snippet of ``text`` around the query's first match, at most about ``width``
    characters, whitespace collapsed, ``…`` where it was cut; and the ``(start, end)`` ranges of
    the query's words in it. The caller renders the marks (never HTML built here)."""
    pattern = _pattern(query)
    first = pattern.search(text)
    start = 0 if first is None else max(0, first.start() - width // 3)
    if start:
        space = text.rfind(" ", 0, start + 1)
        start = space + 1 if space > start - 20 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.find(" ", end - 20, end)
        end = space if space > 0 else end
    body = " ".join(text[start:end].split())
    snippet = ("…" if start > 0 else "") + body + ("…" if end < len(text) else "")
    marks = tuple((m.start(), m.end()) for m in pattern.finditer(snippet))
    return snippet, marks
