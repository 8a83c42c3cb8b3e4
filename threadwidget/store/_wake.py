"""How the feed's watcher thread learns that another connection committed.

Every Store rings a *bell* after each of its commits: it rewrites one byte of a sidecar file
``<db>-bell`` beside the database. On Linux the watcher blocks on inotify for that file
(``IN_MODIFY``), so it wakes ~0.1 ms after a commit in any process and costs no CPU while idle.
The bell is rung *after* ``COMMIT`` returns, so a wake-up never arrives before the commit is
visible (inotify on the ``-wal`` file can: the ``-shm`` index is updated through mmap, which inotify
never reports).

Writers that do not ring the bell (the ``sqlite3`` shell, Datasette) are still seen: the watcher
compares ``PRAGMA data_version`` on every wake-up and at least every ``slow_check`` seconds.

Where inotify is missing (macOS, Windows) or unreliable (NFS, CIFS and other network file systems:
it only reports changes made on this machine), the watcher polls ``data_version`` every
``poll_interval`` seconds instead.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

__all__ = ["Bell", "PollWaiter", "Waiter", "make_waiter", "network_filesystem"]

_NETWORK_FS = ("nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "afs", "9p", "fuse.sshfs", "lustre", "gpfs")


def network_filesystem(path: Path, mounts_file: Path = Path("/proc/mounts")) -> str | None:
    """The file system type when ``path`` lives on a network file system, else None (Linux only)."""
    try:
        mounts = mounts_file.read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    best, best_type = "", ""
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount_point = parts[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) > len(best):
            best, best_type = mount_point, parts[2]
    return best_type if best_type in _NETWORK_FS else None


class Bell:
    """The sidecar file a Store touches after each commit. Rung with one ``pwrite`` (~2 µs)."""

    def __init__(self, path: Path, mode: int = 0o666):
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()  # a ring never writes to a closed (maybe reused) descriptor
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
        except OSError:
            self._fd = None  # read-only directory: readers fall back to data_version checks

    def ring(self) -> None:
        with self._lock:
            if self._fd is not None:
                try:
                    os.pwrite(self._fd, b"\0", 0)
                except OSError:
                    pass

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class Waiter:
    """Blocks until the bell rings or ``timeout`` seconds pass. ``wake()`` interrupts from any thread."""

    mode = "base"

    def wait(self, timeout: float) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class PollWaiter(Waiter):
    """No notifications: the watcher re-checks ``data_version`` every ``interval`` seconds."""

    mode = "poll"

    def __init__(self, interval: float):
        self.interval = interval
        self._event = threading.Event()

    def wait(self, timeout: float) -> None:
        self._event.wait(min(timeout, self.interval))
        self._event.clear()

    def wake(self) -> None:
        self._event.set()


class InotifyWaiter(Waiter):
    """Blocks on inotify for the bell file; a pipe lets ``wake()`` interrupt the block."""

    mode = "inotify"

    def __init__(self, bell_path: Path):
        import select

        import inotify_simple

        self._select = select
        self._flags = inotify_simple.flags
        self._inotify = inotify_simple.INotify()
        self._bell_path = bell_path
        self._arm()
        self._pipe_r, self._pipe_w = os.pipe()
        os.set_blocking(self._pipe_r, False)

    def _arm(self) -> None:
        if not self._bell_path.exists():
            self._bell_path.touch()
        f = self._flags
        self._inotify.add_watch(self._bell_path, f.MODIFY | f.DELETE_SELF | f.MOVE_SELF)

    def wait(self, timeout: float) -> None:
        readable, _, _ = self._select.select([self._inotify.fd, self._pipe_r], [], [], timeout)
        if self._inotify.fd in readable:
            for event in self._inotify.read(timeout=0):
                if event.mask & (self._flags.DELETE_SELF | self._flags.MOVE_SELF | self._flags.IGNORED):
                    try:
                        self._arm()  # the bell was removed or replaced: watch the new one
                    except OSError:
                        pass
        if self._pipe_r in readable:
            try:
                while os.read(self._pipe_r, 512):
                    pass
            except BlockingIOError:
                pass

    def wake(self) -> None:
        try:
            os.write(self._pipe_w, b"x")
        except OSError:
            pass

    def close(self) -> None:
        self._inotify.close()
        os.close(self._pipe_r)
        os.close(self._pipe_w)


def make_waiter(bell_path: Path, *, mode: str, poll_interval: float) -> Waiter:
    """``mode``: ``auto`` (inotify where it works, else polling), ``inotify`` or ``poll``."""
    if mode == "auto":
        mode = "inotify" if sys.platform.startswith("linux") and not network_filesystem(bell_path) else "poll"
    if mode == "inotify":
        try:
            return InotifyWaiter(bell_path)
        except (ImportError, OSError):
            return PollWaiter(poll_interval)
    return PollWaiter(poll_interval)
