"""Who has a thread open, and who is typing (a part of ``Store``).

Each open view keeps one row in ``presence`` (``view_id`` is the view's, random per view): its
thread, its person, whether they are typing, and when it was last seen (``seen_at``, the store's
clock). A view renews its row every ``PRESENCE_RENEW`` seconds with one small ``UPDATE`` that logs
no change (no other process wakes for it); a view that appears, leaves, switches thread or starts or
stops typing logs a ``presence`` change, so the others show it at once. A row older than
``PRESENCE_SECONDS`` is a view whose kernel is gone: ``present`` leaves it out, and housekeeping
deletes it later.
"""

from __future__ import annotations

from .._people import current_user
from ._checks import check_text
from ._dialect import Conn
from ._part import StorePart
from ._rows import Presence

__all__ = ["PRESENCE_RENEW", "PRESENCE_SECONDS", "Presences"]

#: how often an open view renews its row (seconds)
PRESENCE_RENEW = 3.0
#: a row not renewed for this long is a view whose kernel is gone (seconds)
PRESENCE_SECONDS = 8.0
#: rows older than this are deleted by housekeeping (seconds)
PRESENCE_FORGET = 60.0


class Presences(StorePart):
    """Presence rows (a part of ``Store``)."""

    def set_presence(self, view_id: str, thread_id: str, *, user_id: str | None = None, typing: bool = False) -> bool:
        """Say that view ``view_id`` of ``user_id`` (default: ``$JUPYTERHUB_USER``, else the login
        name) has ``thread_id`` open, typing or not, now. One small write; a change (``presence``
        in the feed) only when the view appears, switches thread, its person or typing changes,
        or its row had expired. True when it logged one."""
        check_text("view_id", view_id)
        check_text("thread_id", thread_id)
        person = current_user() if user_id is None else check_text("user_id", user_id)
        flag = int(bool(typing))

        def write(conn: Conn, now: float) -> bool:
            row = conn.execute(
                "SELECT thread_id, user_id, typing, seen_at FROM presence WHERE view_id = ?", (view_id,)
            ).fetchone()
            if row is not None and tuple(row[:3]) == (thread_id, person, flag) and row[3] >= now - PRESENCE_SECONDS:
                conn.execute("UPDATE presence SET seen_at = ? WHERE view_id = ?", (now, view_id))
                return False  # renewed: nobody needs to wake for it
            conn.execute(
                "INSERT INTO presence VALUES (?, ?, ?, ?, ?) ON CONFLICT (view_id) DO UPDATE SET "
                "thread_id = excluded.thread_id, user_id = excluded.user_id, typing = excluded.typing, "
                "seen_at = excluded.seen_at",
                (view_id, thread_id, person, flag, now),
            )
            if row is not None and row[0] != thread_id:
                self._log(conn, row[0], "presence", "delete", view_id, now)
            self._log(conn, thread_id, "presence", "insert" if row is None else "update", view_id, now)
            return True

        return bool(self._write(write))

    def clear_presence(self, view_id: str) -> None:
        """The view closed (or left its thread): others stop showing it at once."""

        def write(conn: Conn, now: float) -> None:
            row = conn.execute("SELECT thread_id FROM presence WHERE view_id = ?", (view_id,)).fetchone()
            if row is not None:
                conn.execute("DELETE FROM presence WHERE view_id = ?", (view_id,))
                self._log(conn, row[0], "presence", "delete", view_id, now)

        self._write(write)

    def present(self, thread_id: str) -> list[Presence]:
        """The views that have ``thread_id`` open now (seen within ``PRESENCE_SECONDS``), by person."""
        rows = self._conn().execute(
            "SELECT * FROM presence WHERE thread_id = ? AND seen_at >= ? ORDER BY user_id, view_id",
            (thread_id, self._db.now() - PRESENCE_SECONDS),
        )
        return [Presence.from_sql(r) for r in rows]

    def _forget_presence(self) -> None:
        """Housekeeping: delete the rows of views long gone (cheap when there are none)."""
        cutoff = self._db.now() - PRESENCE_FORGET
        if self._conn().execute("SELECT 1 FROM presence WHERE seen_at < ? LIMIT 1", (cutoff,)).fetchone() is None:
            return
        self._write(lambda conn, now: conn.execute("DELETE FROM presence WHERE seen_at < ?", (cutoff,)))
