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

import errno
import os
import select
import stat
import sys
import threading
import time
import warnings
from pathlib import Path

from .._errors import StoreWarning

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
    """The sidecar file a Store touches after each commit. Rung with one ``pwrite`` (~2 µs).

    Opened without following symbolic links, and only used when it is a regular file with one link:
    the folder may be shared, and a bell that pointed elsewhere would make every user's kernel
    write into a file of the attacker's choosing. A refused or unwritable bell leaves ``problem``
    set (the store warns once; its feed then polls). A bell deleted or replaced while the store is
    open is opened again at the next ring after a second.
    """

    RECHECK = 1.0  # seconds between checks that the path still names the bell we write

    def __init__(self, path: Path, mode: int = 0o666, *, write: bool = True):
        self.path = path
        self.problem: str | None = None
        self._mode = mode
        self._fd: int | None = None
        self._id: tuple[int, int] | None = None
        self._checked = time.monotonic()
        self._lock = threading.Lock()  # a ring never writes to a closed (maybe reused) descriptor
        self._write = write  # a process that may only read never rings (it still watches)
        if write:
            self._open()

    def _open(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, self._mode)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.problem = (
                    f"{self.path} is a symbolic link: threadwidget does not follow it (it could point at any "
                    f"file). Live updates fall back to polling. Remove it (rm {self.path}); it is re-created."
                )
            else:
                self.problem = (
                    f"cannot open {self.path} for writing ({exc.strerror}): other processes see this one's "
                    "changes only by polling. Make it writable for every user of the store."
                )
            return
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            os.close(fd)
            kind = "has other hard links" if stat.S_ISREG(st.st_mode) else "is not a regular file"
            self.problem = (
                f"{self.path} {kind}: threadwidget does not write to it. Live updates fall back to "
                f"polling. Remove it (rm {self.path}); it is re-created."
            )
            return
        if st.st_size == 0 and st.st_uid == os.geteuid():
            try:
                os.fchmod(fd, self._mode)  # new: the database's mode, whatever the umask
            except OSError:
                pass
        self._fd, self._id, self.problem = fd, (st.st_dev, st.st_ino), None

    def ring(self) -> None:
        if not self._write:
            return
        with self._lock:
            if self._fd is not None:
                try:
                    os.pwrite(self._fd, b"\0", 0)
                except OSError:
                    pass
            now = time.monotonic()
            if now - self._checked >= self.RECHECK:
                self._checked = now
                self._recheck()

    def _recheck(self) -> None:
        """Open the bell again if its path was deleted or now names another file."""
        try:
            st = os.lstat(self.path)
            same = (st.st_dev, st.st_ino) == self._id
        except OSError:
            same = False
        if not same:
            self._close()
            self._open()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        with self._lock:
            self._close()


class Waiter:
    """Blocks until the bell rings or ``timeout`` seconds pass. ``wake()`` interrupts from any thread."""

    mode = "base"
    #: seconds between looks at the change log when nothing woke the feed (writers that do not ring)
    slow_check = 0.25
    #: true while the waiter cannot wait for wake-ups (its server went away) and only polls
    reconnecting = False

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
    """Blocks on inotify for the bell file; a pipe lets ``wake()`` interrupt the block. ``poll()``,
    not ``select()``: a process with more than 1,024 open files keeps its watcher."""

    mode = "inotify"

    def __init__(self, bell_path: Path):
        import inotify_simple

        self._flags = inotify_simple.flags
        self._inotify = inotify_simple.INotify()
        self._bell_path = bell_path
        self._pipe_r, self._pipe_w = os.pipe()
        os.set_blocking(self._pipe_r, False)
        self._poller = select.poll()
        self._poller.register(self._inotify.fd, select.POLLIN)
        self._poller.register(self._pipe_r, select.POLLIN)
        self._armed = False
        try:
            self._arm()
        except OSError:
            self.close()
            raise

    def _arm(self) -> None:
        f = self._flags
        self._inotify.add_watch(self._bell_path, f.MODIFY | f.DELETE_SELF | f.MOVE_SELF | f.DONT_FOLLOW)
        self._armed = True

    def wait(self, timeout: float) -> None:
        if not self._armed:  # the bell went away: look for its successor now and then
            try:
                self._arm()
            except OSError:
                timeout = min(timeout, 0.05)
        ready = {fd for fd, _ in self._poller.poll(max(0.0, timeout) * 1000)}
        if self._inotify.fd in ready:
            for event in self._inotify.read(timeout=0):
                if event.mask & (self._flags.DELETE_SELF | self._flags.MOVE_SELF | self._flags.IGNORED):
                    self._armed = False
                    try:
                        self._arm()  # the bell was removed or replaced: watch the new one
                    except OSError:
                        pass  # not there yet: its writer re-creates it
        if self._pipe_r in ready:
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
        except ImportError:
            pass
        except OSError as exc:  # e.g. the per-user limit of inotify instances or watches
            warnings.warn(
                f"cannot watch {bell_path} with inotify ({exc.strerror}); this store's feed polls every "
                f"{poll_interval * 1000:g} ms instead. Raise fs.inotify.max_user_instances / "
                "max_user_watches (sysctl), or close stores you no longer use.",
                StoreWarning,
                stacklevel=3,
            )
    return PollWaiter(poll_interval)
