"""The store's files on disk: who may write them, the modes they are created with, and what a
SQLite error says about them.

A store lives in four files: ``<db>``, ``<db>-wal``, ``<db>-shm`` (SQLite) and ``<db>-bell``
(threadwidget). Every process that writes needs to write all four, and to create the ``-wal`` and
``-shm`` files in the folder. In a folder shared by a group (setgid and group-writable, the way
JupyterHub admins share a folder: ``chgrp team DIR; chmod 2775 DIR``), threadwidget creates the
database and the bell group-writable whatever the umask, and SQLite gives ``-wal`` and ``-shm`` the
database's mode; elsewhere the umask applies as for any file.
"""

from __future__ import annotations

import grp
import os
import pwd
import sqlite3
import stat
from pathlib import Path

from .._errors import (
    CorruptStoreError,
    ReadOnlyStoreError,
    StoreBusyError,
    StoreError,
    StoreFullError,
    StoreIOError,
)

__all__ = ["create_mode", "describe", "precreate", "shared_folder", "sqlite_error", "write_problem"]

SIDE_FILES = ("-wal", "-shm")


def shared_folder(folder: Path) -> bool:
    """The folder says its files are shared with its group: setgid and group-writable."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & stat.S_ISGID and mode & stat.S_IWGRP)


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def create_mode(folder: Path) -> int:
    """The mode for a new store file in ``folder``: the umask's, plus group read-write in a shared
    folder."""
    mode = 0o666 & ~_umask()
    return mode | 0o060 if shared_folder(folder) else mode


def precreate(path: Path, mode: int) -> None:
    """Create an empty database file with ``mode`` exactly (SQLite would apply the umask), so that
    SQLite gives ``-wal`` and ``-shm`` the same mode. Someone else creating it first is fine."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def describe(path: Path) -> str:
    """``mode rw-r--r--, owner alice, group team`` for messages."""
    try:
        st = path.stat()
    except OSError as exc:
        return exc.strerror or "missing"
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"mode {stat.filemode(st.st_mode)[1:]}, owner {owner}, group {group}"


def _me() -> str:
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = str(os.geteuid())
    groups = []
    for gid in os.getgroups() or [os.getegid()]:
        try:
            groups.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            groups.append(str(gid))
    return f"user {user}, groups {', '.join(groups)}"


def write_problem(path: Path) -> str | None:
    """Why this process cannot write the store at ``path`` (``None``: it can), with the fix."""
    folder = path.parent
    blocked = [p for p in (path, *(Path(f"{path}{s}") for s in SIDE_FILES)) if p.exists() and not os.access(p, os.W_OK)]
    missing = [Path(f"{path}{s}") for s in SIDE_FILES if not Path(f"{path}{s}").exists()]
    if not blocked and not (missing and not os.access(folder, os.W_OK | os.X_OK)):
        return None
    if blocked:
        what = "; ".join(f"{p.name}: {describe(p)}" for p in blocked)
        cause = f"this process ({_me()}) cannot write {what}"
    else:
        cause = f"this process ({_me()}) cannot create files in {folder} ({describe(folder)})"
    return (
        f"{path} is read-only here: {cause}. Views show the store but cannot send or stop answers. "
        f"To share a store between users, give them a common group and a setgid folder "
        f"(chgrp GROUP {folder}; chmod 2775 {folder}), and make the existing files writable by it "
        f"(chgrp GROUP {path}*; chmod g+w {path}*); threadwidget then creates new files "
        "group-writable whatever the umask."
    )


def sqlite_error(exc: sqlite3.Error, path: Path) -> StoreError:
    """The ``StoreError`` that says what a SQLite error means for the store at ``path``."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreBusyError(
            f"{path} stayed locked by another process for too long ({text}). Is a process holding a "
            "long write transaction (a sqlite3 shell with BEGIN)?"
        )
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return ReadOnlyStoreError(write_problem(path) or f"{path} is read-only here ({text}).")
    if name == "SQLITE_FULL" or "full" in text:
        return StoreFullError(
            f"the disk or quota holding {path} is full ({text}); nothing was written. Free some space "
            "(df -h, or your quota) and try again."
        )
    if name.startswith("SQLITE_IOERR") or "disk I/O error" in text:
        return StoreIOError(
            f"reading or writing {path} failed in the operating system ({text}). Check the disk and "
            "the file system (dmesg), and that the file was not removed or replaced."
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return CorruptStoreError(
            f"{path} is damaged ({text}). Stop the processes using it, keep a copy, and check it with "
            f"`sqlite3 {path} 'PRAGMA integrity_check'`; restore it from a backup, or start a new store."
        )
    if "no such table" in text or "no such column" in text:
        return CorruptStoreError(
            f"{path} lacks threadwidget's tables ({text}): it is not a threadwidget store, or it was "
            "changed by another program. Open a threadwidget store, or a new path to create one."
        )
    return StoreError(f"{path}: {text}")
