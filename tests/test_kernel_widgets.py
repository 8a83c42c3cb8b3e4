"""Widget traffic in a real kernel: a ChatView displayed in an IPython kernel (started by
``jupyter_client`` from this venv) follows an answer that another OS process writes into the store,
and its deltas arrive on iopub while the kernel stays free to run cells."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import KernelManager
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager

import threadwidget as tw

from .conftest import ROOT, python_env

WORKERS = ROOT / "tests" / "widget_workers.py"
STARTUP_S = 60
TIMEOUT_S = 30


class Kernel:
    """A kernel of this venv's Python, with iopub read on a thread that stamps each message's arrival."""

    def __init__(self, kernel_dir: Path) -> None:
        spec = kernel_dir / "tw-test"
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "tw test", "language": "python"}))
        specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)], ensure_native_kernel=False)
        self.manager = KernelManager(kernel_name="tw-test", kernel_spec_manager=specs)
        self.manager.start_kernel(env=python_env())
        self.client: BlockingKernelClient = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=STARTUP_S)
        self.iopub: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            self.iopub.put((time.time(), msg))

    def execute(self, code: str) -> dict[str, Any]:
        """Run ``code``; return the shell reply's content (raising if the cell failed)."""
        msg_id = self.client.execute(code)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content: dict[str, Any] = reply["content"]
        if content["status"] != "ok":
            raise AssertionError(f"cell failed: {content.get('ename')}: {content.get('evalue')}")
        return content

    def close(self) -> None:
        self._stop.set()
        self._reader.join(5)
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    k = Kernel(tmp_path / "kernels")
    try:
        yield k
    finally:
        k.close()


def next_iopub(k: Kernel, deadline: float) -> tuple[float, dict[str, Any]]:
    try:
        return k.iopub.get(timeout=max(0.01, deadline - time.monotonic()))
    except queue.Empty:
        pytest.fail("no iopub message before the deadline")


def test_deltas_from_another_process_reach_iopub_while_the_kernel_stays_free(kernel: Kernel, tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    with tw.Store(db) as store:
        thread_id = store.create_thread(title="Shared", agent="writer").id

    kernel.execute(
        "import threadwidget as tw\n"
        f"store = tw.Store({str(db)!r})\n"
        f"view = tw.ChatView({thread_id!r}, store=store)\n"
        "display(view)\n"
    )
    deadline = time.monotonic() + TIMEOUT_S
    model_id = None
    while model_id is None:
        _, msg = next_iopub(kernel, deadline)
        if msg["msg_type"] == "display_data":
            model_id = msg["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
            assert msg["content"]["data"]["text/plain"].startswith(f"ChatView(thread {thread_id}, 'Shared'")

    writer = subprocess.Popen(
        [sys.executable, str(WORKERS), "stream", str(db), thread_id, "150", "300"],
        stdout=subprocess.PIPE, text=True, env=python_env(),
    )  # fmt: skip
    chunks: list[tuple[float, dict[str, Any]]] = []
    free_at = None  # when a cell run during the stream replied
    deadline = time.monotonic() + TIMEOUT_S
    while not (chunks and chunks[-1][1]["end"]):
        at, msg = next_iopub(kernel, deadline)
        content = msg["content"]
        if msg["msg_type"] != "comm_msg" or content.get("comm_id") != model_id:
            continue
        data = content["data"]
        if data.get("method") == "custom" and data["content"]["kind"] == "delta":
            chunks.append((at, data["content"]))
            if free_at is None:  # the answer is streaming in: is the kernel still free to run a cell?
                assert kernel.execute("40 + 2")["status"] == "ok"
                free_at = time.time()
    assert writer.stdout is not None
    result = json.loads(writer.stdout.readline())
    assert writer.wait(TIMEOUT_S) == 0 and result["status"] == "success"

    assert free_at is not None and free_at < chunks[-1][0], "the cell only ran after the stream ended"
    seq, text = 0, []
    for _, c in chunks:
        assert c["message_id"] == result["message_id"]
        if c["end"] and c["seq"] == seq:
            continue  # the end flag on the last delta again
        assert c["first_seq"] == seq + 1, f"chunk {c['first_seq']}..{c['seq']} after {seq}"
        seq = c["seq"]
        text.append(c["text"])
    assert "".join(text) == result["text"] == " ".join(f"word{i}" for i in range(300))
    assert [c["end"] for _, c in chunks].count(True) == 1
    assert len(chunks) < 150, f"{len(chunks)} chunks for 300 tokens: not coalesced"

    latency = chunks[-1][0] - result["last_token_at"]
    print(f"\nlast token in the writer -> last delta on the kernel's iopub: {latency * 1000:.1f} ms")
    assert latency < 2.0

    reply = kernel.execute("print(repr(view))")
    assert reply["status"] == "ok"
    kernel.execute("view.close(); store.close()")


def test_a_view_in_a_kernel_shows_where_another_process_handed_the_thread_over(kernel: Kernel, tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    with tw.Store(db) as store:
        thread_id = store.create_thread(title="Table", agent="booking").id
    kernel.execute(
        "import threadwidget as tw\n"
        f"store = tw.Store({str(db)!r})\n"
        f"view = tw.ChatView({thread_id!r}, store=store)\n"
        "display(view)\n"
    )
    deadline = time.monotonic() + TIMEOUT_S
    model_id = None
    while model_id is None:
        _, msg = next_iopub(kernel, deadline)
        if msg["msg_type"] == "display_data":
            model_id = msg["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    writer = subprocess.run([sys.executable, str(WORKERS), "handoff", str(db), thread_id], capture_output=True,
                            text=True, env=python_env(), timeout=TIMEOUT_S, check=True)  # fmt: skip
    assert json.loads(writer.stdout) == {"status": "success", "agents": ["booking", "confirm"]}

    def handed_over(messages: list[dict[str, Any]]) -> bool:
        """What the browser's view reads: the step with the transfer that was made, then confirm's answer."""
        steps = [m for m in messages if m["role"] == "assistant"]
        return [m["agent"] for m in steps] == ["booking", "confirm"] and steps[-1]["status"] == "success" and [
            (c["name"], c["status"], json.loads(c["result"] or "null")) for c in steps[0]["tool_calls"]
        ] == [("transfer_to_confirm", "success", {"transferred_to": "confirm"})]

    seen = False
    deadline = time.monotonic() + TIMEOUT_S
    while not seen:  # the view's messages, as its comm sends them to the browser
        _, msg = next_iopub(kernel, deadline)
        data = msg["content"].get("data", {})
        if msg["msg_type"] == "comm_msg" and msg["content"].get("comm_id") == model_id and "messages" in data.get(
            "state", {}
        ):
            seen = handed_over(data["state"]["messages"])
    kernel.execute("view.close(); store.close()")
