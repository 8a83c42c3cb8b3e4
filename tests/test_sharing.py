"""Two Unix users share one store in a group's setgid folder, as on a JupyterHub (run as root: the
test creates the users). A third user outside the group is told at once that it may only read."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import PYTHON, python_env
from .test_agent_processes import read_json

WORKERS = str(Path(__file__).with_name("share_workers.py"))
GROUP, ALICE, BOB, CAROL = "twteam", "twalice", "twbob", "twcarol"

if os.geteuid() != 0 and not os.environ.get("CI"):
    pytest.skip("creating Unix users needs root (under CI=true this is a failure)", allow_module_level=True)


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def users() -> Iterator[None]:
    assert os.geteuid() == 0, "the two-user test runs as root: it creates Unix users"
    _run("groupadd", "-f", GROUP)
    for user, groups in ((ALICE, [GROUP]), (BOB, [GROUP]), (CAROL, [])):
        subprocess.run(["userdel", user], capture_output=True, check=False)  # absent: fine
        _run("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", *(["-G", ",".join(groups)] if groups else []), user)
    yield
    for user in (ALICE, BOB, CAROL):
        subprocess.run(["userdel", user], capture_output=True, check=False)  # absent: fine
    subprocess.run(["groupdel", GROUP], capture_output=True, check=False)


@pytest.fixture
def shared_folder(users: None) -> Iterator[Path]:
    """The README's recipe: a folder of the group, setgid, group-writable (chmod 2775)."""
    folder = Path(tempfile.mkdtemp(prefix="tw-shared-", dir="/tmp"))
    shutil.chown(folder, group=GROUP)
    folder.chmod(0o2775)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def as_user(user: str, umask: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([PYTHON, WORKERS, user, umask, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=python_env())  # fmt: skip


@pytest.mark.parametrize("umask", ["022", "002"])
def test_two_users_write_one_store_and_see_each_other_live(shared_folder: Path, procs: list, umask: str) -> None:
    db = str(shared_folder / "team.db")
    alice = as_user(ALICE, umask, db, "create")  # Alice's kernel opens the store first and watches
    procs.append(alice)
    opened = read_json(alice)
    assert opened["warnings"] == [] and opened["feed_mode"] == "inotify"
    modes = as_user(ALICE, umask, db, "modes")
    procs.append(modes)
    # every file group-writable whatever the umask: the folder says they are shared
    assert all(mode[5:6] == "w" and group == GROUP for mode, group in read_json(modes).values()), modes

    bob = as_user(BOB, umask, db, "write", opened["thread_id"], "hello from bob")
    procs.append(bob)
    wrote = read_json(bob)
    assert wrote == {"ok": True, "read_only": None, "warnings": []}
    assert read_json(alice) == {"text": "hello from bob"}  # live, through the bell Bob rang

    carol = as_user(CAROL, umask, db, "write", opened["thread_id"], "hello from carol")
    procs.append(carol)
    refused = read_json(carol)
    assert refused["ok"] is False and refused["read_only"] and refused["warnings"] == [refused["read_only"]]
    for named in ("team.db", CAROL, "chmod 2775", "read-only"):  # the file, who, the fix
        assert named in refused["error"], refused["error"]

    last = as_user(BOB, umask, db, "write", opened["thread_id"], "bye")
    procs.append(last)
    assert read_json(last)["ok"] is True
    assert read_json(alice) == {"text": "bye"}
    assert alice.wait(10) == 0
