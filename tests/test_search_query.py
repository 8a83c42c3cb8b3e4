"""The search query syntax: what a person types, parsed; written for FTS5 and tsquery with every word
quoted; and the words marked in a snippet. (The search itself, on both backends: test_search.py.)"""

from __future__ import annotations

import pytest

import threadwidget as tw
from threadwidget.store._query import mark, parse_query


@pytest.mark.parametrize(
    ("query", "fts5", "tsquery"),
    [
        ("Order 42", '("order") AND ("42")', "('order') & ('42')"),
        ('"refund policy"', '("refund policy")', "(('refund' <-> 'policy'))"),
        ("ship*", '("ship"*)', "('ship':*)"),
        ("a OR b c", '("a" OR "b") AND ("c")', "('a' | 'b') & ('c')"),
        ("order -refund", '("order") NOT ("refund")', "('order') & !'refund'"),
        ("e-mail", '("e mail")', "(('e' <-> 'mail'))"),
        ('NEAR(a b) text:x ^y "z"', '("near a") AND ("b") AND ("text x") AND ("y") AND ("z")',
         "(('near' <-> 'a')) & ('b') & (('text' <-> 'x')) & ('y') & ('z')"),
        ("l'ordre AND or", '("l ordre") AND ("and") AND ("or")', "(('l' <-> 'ordre')) & ('and') & ('or')"),
    ],
)  # fmt: skip
def test_queries_become_quoted_words(query: str, fts5: str, tsquery: str) -> None:
    parsed = parse_query(query)
    assert (parsed.fts5(), parsed.tsquery()) == (fts5, tsquery)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ('say "hello', 'has a quote (") that is not closed'),
        ("OR refund", "has an OR without a word to find on each side"),
        ("refund OR", "has an OR without a word to find on each side"),
        ("refund OR -policy", "has an OR without a word to find on each side"),
        ("-refund", "has only excluded terms"),
        ("?! ... ##", "has no words to search for"),
        ("x " * 600, "characters long"),
        (42, "query=42 is not valid; expected a str"),
    ],
)
def test_a_query_that_does_not_parse_names_itself_the_syntax_and_the_fix(query: object, says: str) -> None:
    with pytest.raises(tw.SearchQueryError) as caught:
        parse_query(query)
    message = str(caught.value)
    assert says in message
    if isinstance(query, str) and len(query) < 100:
        assert repr(query) in message
        assert 'expected words (all must appear), "a phrase", prefix*, a OR b, -excluded' in message
    assert isinstance(caught.value, tw.InvalidArgumentError)


def test_snippets_are_plain_text_around_the_match_with_the_words_marked() -> None:
    text = "<b>Start</b> " + "filler " * 100 + "the ORDER shipped; re-order?"
    snippet, marks = mark(text, parse_query("order"))
    assert snippet.startswith("…") and snippet.endswith("re-order?") and len(snippet) <= 210
    assert [snippet[a:b] for a, b in marks] == ["ORDER", "order"]  # words, not parts of words
    snippet, marks = mark(text, parse_query("start"))
    assert snippet.startswith("<b>Start</b> filler") and snippet.endswith("…")  # as written: never escaped
    assert [snippet[a:b] for a, b in marks] == ["Start"]
    snippet, marks = mark("shipping shipped ships", parse_query("ship*"))
    assert [snippet[a:b] for a, b in marks] == ["shipping", "shipped", "ships"]


@pytest.mark.parametrize(
    ("query", "text", "found"),
    [
        ("order 42", "Where is my Order #42?", True),
        ("order 43", "Where is my Order #42?", False),
        ('"refund policy"', "see the refund-policy", True),
        ('"policy refund"', "see the refund-policy", False),
        ("ship*", "it shipped", True),
        ("ship", "it shipped", False),
        ("monday OR tuesday", "on Tuesday", True),
        ("order -refund", "order and refund", False),
        ('"a b"*', "x a bee", True),
    ],
)
def test_a_text_not_indexed_yet_is_matched_as_the_index_would(query: str, text: str, found: bool) -> None:
    assert parse_query(query).matches(text) is found
