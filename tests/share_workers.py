"""A process of another Unix user on a shared store: ``python tests/share_workers.py USER UMASK DB COMMAND``.

Started as root, it imports what it needs, then becomes USER (its groups too) with UMASK, and runs
COMMAND: ``create`` (open the store, make a thread, print its id, then watch it and print each
message that arrives until stdin closes), ``write THREAD_ID TEXT`` (add a message, print the
outcome) or ``modes`` (print the mode of each store file).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import queue
import stat
import sys
import warnings

import inotify_simple  # noqa: F401
import sqlite_utils
import sqlite_utils.migrations

import threadwidget as tw

# The interpreter lives under /root, out of other users' reach: load now what is loaded lazily later.
sqlite_utils.Database(memory=True)


def become(user: str, umask: str) -> None:
    pw = pwd.getpwnam(user)
    os.setgroups(os.getgrouplist(user, pw.pw_gid))
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    os.umask(int(umask, 8))


def emit(**data: object) -> None:
    print(json.dumps(data), flush=True)


def create(db: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = tw.Store(db)
    thread = store.create_thread(title="shared", agent="support")
    arrived: queue.SimpleQueue[tw.Event] = queue.SimpleQueue()
    store.subscribe(arrived.put, thread_id=thread.id)
    store.start_watching()
    emit(thread_id=thread.id, feed_mode=store.feed_mode, warnings=[str(w.message) for w in caught])
    while True:
        event = arrived.get()
        if event.kind == "message" and isinstance(event.row, tw.Message):
            emit(text=event.row.text)
            if event.row.text == "bye":
                return


def write(db: str, thread_id: str, text: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = tw.Store(db)
    try:
        store.add_message(thread_id, role="user", text=text)
        emit(ok=True, read_only=store.read_only, warnings=[str(w.message) for w in caught])
    except tw.ReadOnlyStoreError as exc:
        emit(ok=False, error=str(exc), read_only=store.read_only, warnings=[str(w.message) for w in caught])


def modes(db: str) -> None:
    out = {}
    for suffix in ("", "-wal", "-shm", "-bell"):
        st = os.stat(db + suffix)
        out[suffix or "db"] = [stat.filemode(st.st_mode), grp.getgrgid(st.st_gid).gr_name]
    emit(**out)


if __name__ == "__main__":
    user, umask, db, command, *args = sys.argv[1:]
    become(user, umask)
    {"create": create, "write": write, "modes": modes}[command](db, *args)
