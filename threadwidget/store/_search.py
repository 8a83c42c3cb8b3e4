"""Full-text search over messages' text (a part of ``Store``).

The index is the database's: FTS5 on SQLite (``messages_fts``), a ``tsvector`` with a GIN index on
PostgreSQL (``message_search``), both kept in step by triggers in the transaction of each write of
a message, so a message is found as soon as its write commits, whichever process wrote it. The query
syntax is ours (``_query.py``), the same on both; snippets are made here from the message's text,
plain text with the matched words' ranges, never HTML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import SearchQueryError, StoreBusyError
from .._text import one_line
from ._checks import check_choice, check_limit, check_text
from ._dialect import Conn
from ._part import StorePart
from ._query import Query, mark, parse_query, words
from ._rows import Message, Thread

if TYPE_CHECKING:
    from ._vectors import Embedder

__all__ = ["Search", "SearchHit"]

_THREAD_COLUMNS = "t.id, t.title, t.user_id, t.agent, t.metadata, t.created_at, t.updated_at"
_THREAD_WIDTH = 7


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A message that matches a search: its thread, the message, a snippet of its text around the
    match with the matched words' ``(start, end)`` ranges in ``marks``, and ``rank`` (higher is a
    better match; comparable within one search)."""

    thread: Thread
    message: Message
    snippet: str
    marks: tuple[tuple[int, int], ...]
    rank: float

    def parts(self) -> list[tuple[str, bool]]:
        """The snippet as pieces ``(text, marked)``, in order: what a view or a terminal renders."""
        pieces: list[tuple[str, bool]] = []
        at = 0
        for start, end in self.marks:
            if start > at:
                pieces.append((self.snippet[at:start], False))
            pieces.append((self.snippet[start:end], True))
            at = end
        if at < len(self.snippet):
            pieces.append((self.snippet[at:], False))
        return pieces

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the thread's and message's ids and titles, the snippet and its marks."""
        return {
            "thread_id": self.thread.id,
            "thread_title": self.thread.title,
            "message_id": self.message.id,
            "role": self.message.role,
            "position": self.message.position,
            "created_at": self.message.created_at,
            "snippet": self.snippet,
            "marks": [list(m) for m in self.marks],
            "rank": self.rank,
        }

    def __repr__(self) -> str:
        shown = "".join(f"[{text}]" if marked else text for text, marked in self.parts())
        return f"<tw.SearchHit {self.thread.id} {self.message.id} {one_line(shown, 80)!r} rank={self.rank:.3g}>"


#: reciprocal rank fusion's constant (hybrid search): a hit's score is the sum of 1 / (K + rank)
_RRF_K = 60


def _filters(*, user_id: str | None, thread_id: str | None, agent: str | None) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``m`` (messages) and ``t`` (threads) for the search's filters, with their values."""
    where: list[str] = []
    args: list[Any] = []
    for value, condition in ((thread_id, "m.thread_id = ?"), (user_id, "t.user_id = ?"),
                             (agent, "COALESCE(m.agent, t.agent) = ?")):  # fmt: skip
        if value is not None:
            where.append(condition)
            args.append(value)
    return where, args


def _loose(query: str) -> Query | None:
    """For marking a vector search's hits: any of the query's words (None: it has none)."""
    if not isinstance(query, str) or not query.strip():
        raise SearchQueryError(f"query={query!r} is not valid; expected a non-empty str, e.g. 'money back'.")
    found = list(dict.fromkeys(words(query)))[:16]
    return parse_query(" OR ".join(found)) if found else None


class Search(StorePart):
    """``store.search``: full-text search over messages' text, and search by meaning with an
    embedder (``_vectors.py``) (a part of ``Store``)."""

    if TYPE_CHECKING:

        def _nearest(self, query: str, embedder: Embedder | None, where: list[str], args: list[Any],
                     limit: int) -> list[tuple[str, float]]: ...  # fmt: skip

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        thread_id: str | None = None,
        agent: str | None = None,
        limit: int = 20,
        mode: str = "text",
        embedder: Embedder | None = None,
    ) -> list[SearchHit]:
        """Messages that match ``query``, best first.

        ``mode="text"`` (the default) finds the query's words. The syntax: words (all must appear),
        ``"a phrase"``, ``prefix*``, ``a OR b``, ``-excluded``; case does not matter; letters and
        digits make words, other characters separate them. A query that does not parse raises
        ``SearchQueryError`` saying why.

        ``mode="vector"`` finds the messages nearest the query in meaning (their vectors, made by the
        store's embedder or ``embedder``; ``rank`` is the cosine similarity); ``mode="hybrid"`` fuses
        both rankings (reciprocal rank fusion), so a message found either way comes up, and one found
        both ways first. Both raise ``EmbeddingMismatchError`` when the embedder's model or dimension
        is not the stored vectors'.

        ``user_id`` keeps threads of that user, ``thread_id`` one thread, ``agent`` messages of that
        agent (the message's, else its thread's)."""
        check_choice("mode", mode, ("text", "vector", "hybrid"))
        parsed = parse_query(query) if mode != "vector" else _loose(query)
        for name, value in (("user_id", user_id), ("thread_id", thread_id), ("agent", agent)):
            check_text(name, value, optional=True)
        check_limit(limit)
        where, args = _filters(user_id=user_id, thread_id=thread_id, agent=agent)
        if mode == "text":
            assert parsed is not None
            return self._search(parsed, where, args, limit=limit)
        meaning = " ".join(w for w in query.split() if w != "OR")  # the words, not the syntax
        nearest = self._nearest(meaning, embedder, where, args, limit * 2 if mode == "hybrid" else limit)
        if mode == "vector":
            return self._hits(nearest, parsed)
        assert parsed is not None
        fused: dict[str, float] = {}
        for ranking in ([(h.message.id, h.rank) for h in self._search(parsed, where, args, limit=limit * 2)], nearest):
            for place, (message_id, _) in enumerate(ranking):
                fused[message_id] = fused.get(message_id, 0.0) + 1.0 / (_RRF_K + place + 1)
        best = sorted(fused.items(), key=lambda x: (-x[1], x[0]))[:limit]
        return self._hits(best, parsed)

    def _hits(self, ranked: list[tuple[str, float]], query: Query | None) -> list[SearchHit]:
        """``(message_id, rank)`` as hits, in that order (a message deleted meanwhile is left out)."""
        if not ranked:
            return []
        marks = ",".join("?" * len(ranked))
        rows = (
            self._conn()
            .execute(
                f"SELECT m.*, {_THREAD_COLUMNS} FROM messages m JOIN threads t ON t.id = m.thread_id "
                f"WHERE m.id IN ({marks})",
                [mid for mid, _ in ranked],
            )
            .fetchall()
        )
        width = len(rows[0]) - _THREAD_WIDTH if rows else 0
        found = {row[0]: row for row in rows}
        hits = []
        for message_id, rank in ranked:
            row = found.get(message_id)
            if row is None:
                continue
            message = Message.from_sql(row[:width])
            snippet, marked = mark(message.text, query) if query is not None else (one_line(message.text, 200), ())
            hits.append(SearchHit(Thread.from_sql(row[width:]), message, snippet, marked, rank))
        return hits

    def _search(self, query: Query, where: list[str], args: list[Any], *, limit: int) -> list[SearchHit]:
        """The best ``limit`` matches are chosen first (their ids and ranks only: the joins the
        filters need, no message text), then their rows are read: ranking thousands of matches
        reads no text (on SQLite, ~2x faster for a word in a third of the messages)."""
        filters = "".join(f" AND {w}" for w in where)
        joins = " JOIN messages m ON m.{key} = {found} JOIN threads t ON t.id = m.thread_id" if where else ""
        if self._db.dialect == "postgresql":
            best = (
                "SELECT s.message_id AS found, ts_rank(s.words, q, 1) AS score "
                f"FROM to_tsquery('simple', ?) AS q, message_search s{joins.format(key='id', found='s.message_id')} "
                f"WHERE s.words @@ q{filters} ORDER BY score DESC, s.message_id LIMIT ?"
            )
            sql = (
                f"SELECT m.*, {_THREAD_COLUMNS}, b.score FROM ({best}) AS b JOIN messages m ON m.id = b.found "
                "JOIN threads t ON t.id = m.thread_id ORDER BY b.score DESC, m.id"
            )
            rows = self._conn().execute(sql, [query.tsquery(), *args, limit]).fetchall()
            scored = [(r, float(r[-1])) for r in rows]
        else:
            unindexed = self._index_pending()
            found = "messages_fts.rowid"
            best = (
                f"SELECT {found} AS found, bm25(messages_fts) AS score FROM messages_fts"
                f"{joins.format(key='rowid', found=found)} "
                f"WHERE messages_fts MATCH ?{filters} ORDER BY score, {found} DESC LIMIT ?"
            )
            sql = (
                f"SELECT m.*, {_THREAD_COLUMNS}, b.score FROM ({best}) AS b JOIN messages m ON m.rowid = b.found "
                "JOIN threads t ON t.id = m.thread_id ORDER BY b.score, b.found DESC"
            )
            rows = self._conn().execute(sql, [query.fts5(), *args, limit]).fetchall()
            scored = [(r, -float(r[-1])) for r in rows]  # bm25: lower is better
            if unindexed:  # this process cannot index them: they are matched here, after the ranked
                late = (
                    self._conn()
                    .execute(
                        f"SELECT m.*, {_THREAD_COLUMNS}, 0 FROM messages_fts_pending p "
                        "JOIN messages m ON m.rowid = p.rowid JOIN threads t ON t.id = m.thread_id "
                        f"WHERE 1 = 1{filters} ORDER BY p.rowid DESC",
                        args,
                    )
                    .fetchall()
                )
                scored += [(r, 0.0) for r in late if query.matches(r[5])][: max(0, limit - len(scored))]
        hits = []
        for row, rank in scored:
            width = len(row) - _THREAD_WIDTH - 1
            message = Message.from_sql(row[:width])
            snippet, marks = mark(message.text, query)
            hits.append(SearchHit(Thread.from_sql(row[width:-1]), message, snippet, marks, rank))
        return hits

    def _index_pending(self) -> bool:
        """SQLite: index the messages in the index's pending list (fewer than ``FTS_BATCH``: each
        write adds its message to the list, and every ``FTS_BATCH``-th indexes them), so a search finds
        every committed message. True when some stay pending: this process cannot write the file, or
        another held the write lock past ``busy_timeout`` (the search then matches them itself)."""
        if self._conn().execute("SELECT 1 FROM messages_fts_pending LIMIT 1").fetchone() is None:
            return False
        if self._db.read_only:
            return True

        def write(conn: Conn, now: float) -> None:
            conn.execute(
                "INSERT INTO messages_fts (rowid, text) "
                "SELECT m.rowid, m.text FROM messages_fts_pending p JOIN messages m ON m.rowid = p.rowid"
            )
            conn.execute("DELETE FROM messages_fts_pending")

        try:
            self._write(write)
        except StoreBusyError:
            return True
        return False
