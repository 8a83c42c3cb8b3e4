"""The widgets' Python side without a browser: traits, custom messages and handlers, on a real store.

A recording comm (``widget_comm.py``) stands in for the kernel's: it keeps every message a view would
receive, so these tests check exactly what goes over the wire.
"""

from __future__ import annotations

import gc
import json
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest

import threadwidget as tw
from threadwidget.widgets._base import STATIC, TwWidget

from .conftest import wait_until
from .widget_comm import RecordingComm, browser_sends, browser_sets, comms

__all__ = ["comms"]  # the fixture, imported for pytest

MESSAGE_KEYS = {
    "id", "role", "text", "status", "error", "agent", "model", "created_at", "usage", "tool_calls", "user_id",
}  # fmt: skip
TOOL_CALL_KEYS = {
    "id", "message_id", "call_id", "name", "arguments", "status", "progress", "progress_note", "result", "error",
    "started_at", "ended_at", "decision", "decided_by", "decided_at", "decision_note",
}  # fmt: skip


@tw.tool
def lookup_order(order_id: str, ctx: tw.ToolContext) -> dict:
    """Look up an order by id."""
    ctx.progress(0.5, "querying warehouse")
    return {"order_id": order_id, "status": "shipped"}


def make_agent(store: tw.Store, *replies: Any, rate: float | None = None) -> tw.Agent:
    model = tw.ScriptedModel(tokens_per_second=rate)
    model.enqueue(*replies)
    return tw.Agent("support", model=model, tools=[lookup_order], store=store)


def words(n: int) -> str:
    return " ".join(f"word{i}" for i in range(n))


def fill(store: tw.Store, thread_id: str, count: int) -> None:
    for i in range(count // 2):
        store.add_message(thread_id, role="user", text=f"Where is order {i}?", agent="support")
        store.add_message(thread_id, role="assistant", text=f"Order {i} shipped.", agent="support", model="scripted")


def comm_of(widget: Any) -> RecordingComm:
    assert isinstance(widget.comm, RecordingComm)
    return widget.comm


def assert_chunks_cover(chunks: list[dict[str, Any]], message_id: str, text: str, *, after_seq: int = 0) -> None:
    """Chunks of one message: contiguous seqs from ``after_seq + 1``, exactly ``text``, one end flag, last."""
    mine = [c for c in chunks if c["message_id"] == message_id]
    assert mine, "no delta chunks were sent"
    seq, got = after_seq, []
    for c in mine:
        if c["end"] and c["seq"] == seq:  # an end marker repeating the last delta
            assert c["first_seq"] == seq
            continue
        assert c["first_seq"] == seq + 1, f"gap or overlap at {c['first_seq']} after {seq}"
        assert c["seq"] >= c["first_seq"]
        seq = c["seq"]
        got.append(c["text"])
    assert "".join(got) == text
    assert [c["end"] for c in mine].count(True) == 1 and mine[-1]["end"]


def newest(view: Any) -> dict[str, Any]:
    """The newest message a view's trait holds ({} when none)."""
    return view.messages[-1] if view.messages else {}


def settled(view: Any) -> bool:
    """The view shows a finished answer as the newest message, and the thread idle."""
    m = newest(view)
    return m.get("role") == "assistant" and m.get("status") == "success" and view.status["state"] == "idle"


def answered(store: tw.Store, thread_id: str, status: str = "success") -> bool:
    last = store.list_messages(thread_id, limit=1)
    return bool(last) and last[-1].role == "assistant" and last[-1].status == status


# -- snapshot traits -------------------------------------------------------------------------------


def test_snapshot_traits_follow_protocol(store: tw.Store, comms: list[RecordingComm]) -> None:
    agent = make_agent(store, tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"})]), "It shipped.")
    thread = agent.create_thread(title="Order help")
    thread.generate_text("Where is order 42?")
    view = tw.ChatView(thread)
    assert (view.thread_id, view.title, view.agent_attached, view.has_older, view.error) == (
        thread.id, "Order help", True, False, "",
    )  # fmt: skip
    assert view.status == {"state": "idle", "note": ""} and view.stream is None
    assert [m["role"] for m in view.messages] == ["user", "assistant", "assistant"]
    assert [set(m) - MESSAGE_KEYS for m in view.messages] == [set(), set(), {"cost"}]  # on the answer's last step
    cost = view.messages[2]["cost"]
    assert cost["answer"] == "no price" and cost["thread"] == "no price"  # the scripted model has none, not 0
    assert cost["detail"].startswith(f"answer: {store.usage(thread_id=thread.id).input_tokens:,} in / ")
    assert cost["detail"].endswith("no price for the model scripted")
    (call,) = view.messages[1]["tool_calls"]
    assert set(call) == TOOL_CALL_KEYS and call["name"] == "lookup_order" and call["status"] == "success"
    assert view.messages[2]["text"] == "It shipped." and view.messages[2]["usage"]["output_tokens"] > 0
    # what the comm opened with is the same state, JSON-serialisable
    (_, kind, opened, _) = comm_of(view).entries()[0]
    assert kind == "comm_open" and opened["state"]["messages"] == view.messages
    assert view._esm == (STATIC / "chat.js").read_text() and view._css == (STATIC / "widget.css").read_text()


def test_window_keeps_the_last_messages_and_loads_older_on_request(store: tw.Store, comms: list[RecordingComm]) -> None:
    thread = store.create_thread(title="Long", agent="support")
    fill(store, thread.id, 120)
    view = tw.ChatView(thread.id, store=store, window=50)
    assert len(view.messages) == 50 and view.has_older
    assert view.messages[-1]["text"] == "Order 59 shipped." and view.agent_attached is False
    browser_sends(view, {"kind": "load_older", "request_id": "r1", "before": view.messages[0]["id"]})
    (older,) = comm_of(view).customs("older")
    assert older["request_id"] == "r1" and older["has_older"] and len(older["messages"]) == 50
    assert older["messages"][-1]["text"] == "Order 34 shipped." and set(older["messages"][0]) == MESSAGE_KEYS
    browser_sends(view, {"kind": "load_older", "request_id": "r2", "before": older["messages"][0]["id"]})
    last = comm_of(view).customs("older")[-1]
    assert (last["request_id"], len(last["messages"]), last["has_older"]) == ("r2", 20, False)
    browser_sends(view, {"kind": "load_older", "request_id": "r3", "before": "msg_unknown"})
    assert "load_older failed" in view.error and "msg_unknown" in view.error


def test_construction_reads_only_the_window(
    store: tw.Store, comms: list[RecordingComm], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Construction cost does not grow with the thread (bench/widgets.py times it)."""
    thread = store.create_thread(agent="support")
    for i in range(1000):
        m = store.add_message(thread.id, role="assistant", text=f"answer {i}", agent="support")
        store.add_tool_call(m.id, call_id=f"c{i}", name="lookup", status="success")
    calls: list[tuple[str, dict[str, Any]]] = []
    for name in ("list_messages", "list_tool_calls", "list_deltas", "streamed_text"):
        original = getattr(store, name)

        def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append((_name, kwargs))
            return _original(*args, **kwargs)

        monkeypatch.setattr(store, name, spy)
    view = tw.ChatView(thread.id, store=store, window=20)
    assert calls[0] == ("list_messages", {"limit": 21})
    shown = {m["id"] for m in view.messages}
    tool_call_reads = [kw for name, kw in calls if name == "list_tool_calls"]
    assert len(tool_call_reads) == 20 and all(kw["message_id"] in shown for kw in tool_call_reads)
    assert len(calls) == 21 and all(len(m["tool_calls"]) == 1 for m in view.messages)


def test_window_slides_as_messages_arrive(store: tw.Store, comms: list[RecordingComm]) -> None:
    thread = store.create_thread(agent="support")
    fill(store, thread.id, 4)
    view = tw.ChatView(thread.id, store=store, window=5)
    assert not view.has_older
    store.add_message(thread.id, role="user", text="five", agent="support")
    store.add_message(thread.id, role="user", text="six", agent="support")
    wait_until(lambda: newest(view).get("text") == "six")
    assert len(view.messages) == 5 and view.has_older and view.messages[0]["text"] == "Order 0 shipped."


# -- streaming -------------------------------------------------------------------------------------


def test_deltas_are_contiguous_coalesced_and_end(store: tw.Store, comms: list[RecordingComm]) -> None:
    agent = make_agent(store, words(300), rate=600)
    thread = agent.create_thread()
    view = tw.ChatView(thread)
    text = "".join(thread.stream_text("Tell me"))
    answer = store.list_messages(thread.id, limit=1)[-1]
    wait_until(lambda: any(c["end"] for c in comm_of(view).customs("delta")))
    chunks = comm_of(view).customs("delta")
    assert_chunks_cover(chunks, answer.id, text)
    deltas = len(store.list_deltas(answer.id))
    assert len(chunks) < deltas < 300, f"{len(chunks)} chunks for {deltas} deltas of 300 tokens: not coalesced"
    wait_until(lambda: settled(view))
    assert view.messages[-1]["text"] == text and view.stream is None


def test_a_fast_stream_sends_at_most_30_messages_in_any_second(store: tw.Store, comms: list[RecordingComm]) -> None:
    """Deltas and updates together: a view's messages stay under Jupyter Server's rate limits
    however fast the model streams; the text comes in fewer, larger chunks instead. Long enough
    (4 s) for the snapshot a late view would get, a message of its own."""
    from threadwidget.widgets._chatlogic import BURST, MESSAGES_PER_SECOND
    from threadwidget.widgets._stream import SNAPSHOT_AFTER

    agent = make_agent(store, words(int(2000 * (SNAPSHOT_AFTER + 1))), rate=2000)
    thread = agent.create_thread()
    view = tw.ChatView(thread)
    start = len(comm_of(view))
    text = "".join(thread.stream_text("Tell me"))
    wait_until(lambda: settled(view))
    sent = [t for t, kind, _, _ in comm_of(view).entries()[start:] if kind == "comm_msg"]
    busiest = max(sum(1 for u in sent if t <= u < t + 1.0) for t in sent)
    assert busiest <= MESSAGES_PER_SECOND + BURST == 30, f"{busiest} messages in one second"
    assert view.messages[-1]["text"] == text


def test_messages_trait_is_not_rewritten_per_delta(store: tw.Store, comms: list[RecordingComm]) -> None:
    agent = make_agent(store, words(300), rate=600)
    thread = agent.create_thread()
    view = tw.ChatView(thread)
    start = len(comm_of(view))
    "".join(thread.stream_text("Tell me"))
    wait_until(lambda: settled(view))
    updates = comm_of(view).updates()
    with_messages = [u for u in updates[max(0, start - 1) :] if "messages" in u]
    assert 1 <= len(with_messages) <= 4, f"{len(with_messages)} updates of `messages` for one answer"


def test_a_view_opened_mid_answer_gets_a_snapshot_then_continues(store: tw.Store, comms: list[RecordingComm]) -> None:
    agent = make_agent(store, words(200), rate=150)
    thread = agent.create_thread()
    worker = threading.Thread(target=lambda: list(thread.stream_text("Tell me")))
    worker.start()
    wait_until(lambda: (m := store.list_messages(thread.id, limit=1)) and store.streamed_text(m[-1].id)[1] >= 3)
    view = tw.ChatView(thread.id, store=store)
    snap = view.stream
    assert snap is not None and snap["seq"] >= 3 and view.status["state"] == "streaming"
    worker.join(30)
    answer = store.list_messages(thread.id, limit=1)[-1]
    assert snap["message_id"] == answer.id and answer.text.startswith(snap["text"])
    wait_until(lambda: any(c["end"] for c in comm_of(view).customs("delta")))
    chunks = comm_of(view).customs("delta")
    assert_chunks_cover(chunks, answer.id, answer.text[len(snap["text"]) :], after_seq=snap["seq"])


def test_comm_bytes_of_an_answer_do_not_grow_with_the_thread(store: tw.Store, comms: list[RecordingComm]) -> None:
    """A 2,000-token answer costs the same bytes in a thread of 1,000 earlier messages as in an empty
    one: the window is not resent per delta, and boundary updates carry only what changed."""

    def window_bytes(earlier: int) -> int:
        """Bytes of the `messages` updates the answer caused (deltas aside: a view that falls behind
        under load reads the message final and skips deltas, which is right and sends less)."""
        agent = make_agent(store, words(2000), rate=2000)
        thread = agent.create_thread(title="Order help")
        fill(store, thread.id, earlier)
        view = tw.ChatView(thread)
        assert len(view.messages) == min(50, earlier)
        start = len(comm_of(view).updates())
        "".join(thread.stream_text("Tell me a story"))
        wait_until(lambda: settled(view))
        sent = sum(len(json.dumps(u["messages"])) for u in comm_of(view).updates()[start:] if "messages" in u)
        view.close()
        return sent

    empty, full = window_bytes(0), window_bytes(1000)
    assert empty > len(words(2000)), "the final message carries the answer's text"
    assert full <= 1.2 * empty, f"{full} bytes of window updates in a long thread vs {empty} in an empty one"


def test_the_whole_window_goes_to_new_views(store: tw.Store, comms: list[RecordingComm]) -> None:
    agent = make_agent(store, "Fine, thanks.")
    thread = agent.create_thread()
    fill(store, thread.id, 20)
    view = tw.ChatView(thread)
    thread.generate_text("How are you?")
    wait_until(lambda: newest(view).get("text") == "Fine, thanks.")
    last_update = [u for u in comm_of(view).updates() if "messages" in u][-1]
    assert [m["text"] for m in last_update["messages"]][-1] == "Fine, thanks."
    assert len(last_update["messages"]) < 5 and last_update["has_older"], "an update carries the changed tail"
    assert len(view.messages) == 22 and len(view.get_state()["messages"]) == 22, "the trait is the whole window"
    browser_sets(view, _view_count=1)  # a view appeared: it gets the whole window
    again = [u for u in comm_of(view).updates() if "messages" in u][-1]
    assert [m["id"] for m in again["messages"]] == [m["id"] for m in view.messages] and not again["has_older"]
    # the front end counts views: trimmed updates no longer offer older messages that do not exist
    agent.model.enqueue("Bye.")  # type: ignore[attr-defined]
    thread.generate_text("Bye")
    wait_until(lambda: newest(view).get("text") == "Bye.")
    last_update = [u for u in comm_of(view).updates() if "messages" in u][-1]
    assert len(last_update["messages"]) < 5 and not last_update["has_older"]
    browser_sets(view, _view_count=2)
    assert [u for u in comm_of(view).updates() if "messages" in u][-1]["messages"] == view.messages


# -- input from the view ---------------------------------------------------------------------------


def test_send_with_an_agent_answers_in_the_background(store: tw.Store, comms: list[RecordingComm]) -> None:
    agent = make_agent(store, "Order 42 shipped.", rate=500)
    thread = agent.create_thread()
    view = tw.ChatView(thread)
    browser_sends(view, {"kind": "send", "text": "Where is order 42?"})
    wait_until(lambda: answered(store, thread.id))
    user, answer = store.list_messages(thread.id)
    assert (user.text, answer.text) == ("Where is order 42?", "Order 42 shipped.")
    wait_until(lambda: settled(view))
    assert view.error == "" and view.status["state"] == "idle"


def test_a_failed_answer_shows_in_the_status(store: tw.Store, comms: list[RecordingComm]) -> None:
    agent = make_agent(store, tw.ScriptedModel.error("upstream 500", text="Checking"))
    thread = agent.create_thread()
    view = tw.ChatView(thread)
    browser_sends(view, {"kind": "send", "text": "Where is order 42?"})
    wait_until(lambda: view.status == {"state": "failed", "note": "upstream 500"})
    assert newest(view)["status"] == "failed" and newest(view)["error"] == "upstream 500"


def test_send_without_an_agent_leaves_the_prompt_for_serve(store: tw.Store, comms: list[RecordingComm]) -> None:
    thread = store.create_thread(agent="support")
    view = tw.ChatView(thread.id, store=store)
    browser_sends(view, {"kind": "send", "text": "Anyone there?"})
    (msg,) = store.list_messages(thread.id)
    assert (msg.role, msg.status, msg.agent, msg.text) == ("user", "pending", "support", "Anyone there?")
    wait_until(lambda: view.status["state"] == "waiting")
    assert "agent.serve()" in view.status["note"] and "'support'" in view.status["note"]
    assert newest(view)["status"] == "pending" and newest(view)["queue_position"] == 1
    # a process serving the agent answers it, and the view follows
    worker = make_agent(store, "Yes, here.").serve()
    try:
        wait_until(lambda: newest(view).get("text") == "Yes, here." and view.status["state"] == "idle")
    finally:
        worker.stop()


def test_send_to_a_thread_without_an_agent_explains(store: tw.Store, comms: list[RecordingComm]) -> None:
    thread = store.create_thread()
    view = tw.ChatView(thread.id, store=store)
    browser_sends(view, {"kind": "send", "text": "hello"})
    assert store.list_messages(thread.id) == [] and "agent=tw.Agent" in view.error
    assert comm_of(view).customs("unsent") == [{"kind": "unsent", "text": "hello"}]  # back into the box
    browser_sends(view, {"kind": "send", "text": "   "})
    browser_sends(view, {"kind": "no-such-kind"})
    browser_sends(view, ["not", "an", "object"])  # type: ignore[arg-type]
    assert store.list_messages(thread.id) == []


def test_abort_from_a_view_with_an_agent(store: tw.Store, comms: list[RecordingComm]) -> None:
    agent = make_agent(store, words(2000), rate=100)
    thread = agent.create_thread()
    view = tw.ChatView(thread)
    browser_sends(view, {"kind": "send", "text": "Tell me a long story"})
    wait_until(lambda: view.status["state"] == "streaming" and comm_of(view).customs("delta"))
    agent.model.enqueue("Here is the other thing.")  # type: ignore[attr-defined]
    browser_sends(view, {"kind": "send", "text": "And another thing"})  # waits its turn
    wait_until(lambda: view.status["note"] == "Answering… · 1 prompt queued")
    assert newest(view)["queue_position"] == 1 and view.error == ""
    browser_sends(view, {"kind": "abort"})  # stops the running answer; the queued prompt is answered next
    wait_until(lambda: newest(view).get("text") == "Here is the other thing." and view.status["state"] == "idle")
    first, second = (store.answer(m.id) for m in store.list_messages(thread.id) if m.role == "user")
    assert (first.status, first.error, second.status) == ("aborted", "aborted by request", "success")
    assert any(c["end"] for c in comm_of(view).customs("delta"))


def test_abort_from_a_view_without_an_agent_asks_the_writer(store: tw.Store, comms: list[RecordingComm]) -> None:
    agent = make_agent(store, words(2000), rate=100)
    thread = agent.create_thread()
    writer = threading.Thread(target=lambda: list(thread.stream_text("Tell me a long story")))
    writer.start()
    view = tw.ChatView(thread.id, store=store)  # no agent: only the store connects it to the writer
    wait_until(lambda: view.status["state"] == "streaming")
    browser_sends(view, {"kind": "abort"})
    writer.join(30)
    assert answered(store, thread.id, "aborted")
    wait_until(lambda: view.status["state"] == "aborted" and view.stream is None)


def test_send_and_abort_from_python_like_the_view(store: tw.Store, comms: list[RecordingComm]) -> None:
    agent = make_agent(store, words(2000), rate=100)
    thread = agent.create_thread()
    writer = threading.Thread(target=lambda: list(thread.stream_text("Tell me a long story")))
    writer.start()
    view = tw.ChatView(thread.id, store=store)  # view-only: no agent in this "notebook"
    wait_until(lambda: view.status["state"] == "streaming")
    view.abort()
    writer.join(30)
    assert answered(store, thread.id, "aborted")
    view.send_prompt("And now?")
    assert store.list_messages(thread.id)[-1].status == "pending"  # waits for agent.serve()
    view.send({"kind": "custom"})  # ipywidgets' own send() still sends custom messages


# -- text, lifetime ----------------------------------------------------------------------------------


def test_repr_shows_thread_state_and_last_messages(store: tw.Store, comms: list[RecordingComm]) -> None:
    agent = make_agent(store, "Order 42 shipped on Monday.")
    thread = agent.create_thread(title="Order help")
    thread.generate_text("Where is order 42?")
    view = tw.ChatView(thread)
    text = repr(view)
    assert text.startswith(f"ChatView(thread {thread.id}, 'Order help', 2 messages, idle)")
    assert "You: Where is order 42?" in text and "support: Order 42 shipped on Monday." in text
    bundle, _ = view._repr_mimebundle_()
    assert bundle["text/plain"] == text and bundle["application/vnd.jupyter.widget-view+json"]["model_id"]
    from IPython.core.formatters import DisplayFormatter

    formatter = DisplayFormatter()
    tw._register_display(formatter)  # what `import threadwidget` does in a running IPython
    shown, _ = formatter.format(thread)
    assert shown["text/plain"].startswith("ChatView(thread ")
    model_id = shown["application/vnd.jupyter.widget-view+json"]["model_id"]
    again, _ = formatter.format(thread)  # shown again: the same live view, not a new one
    assert again["application/vnd.jupyter.widget-view+json"]["model_id"] == model_id
    thread._view.close()
    after_close, _ = formatter.format(thread)
    assert after_close["application/vnd.jupyter.widget-view+json"]["model_id"] != model_id


def test_close_unsubscribes_and_nothing_leaks(store: tw.Store, comms: list[RecordingComm]) -> None:
    thread = store.create_thread(agent="support")
    threads_before = {t for t in threading.enumerate() if t.name != "threadwidget-ticker"}
    view = tw.ChatView(thread.id, store=store)
    panel = tw.ToolCallsPanel(thread.id, store=store)
    subscriptions = [view._chat._slot.current, panel._tools._slot.current]
    assert all(s is not None and not s.closed for s in subscriptions)
    recorder = comm_of(view)
    view.close()
    panel.close()
    assert view.closed and all(s is not None and s.closed for s in subscriptions)
    assert recorder.entries()[-1][1] == "comm_close"
    sent = len(recorder)
    store.add_message(thread.id, role="user", text="after close", agent="support")
    probe = threading.Event()
    with store.subscribe(lambda e: probe.set(), thread_id=thread.id):
        store.add_message(thread.id, role="user", text="probe", agent="support")
        assert probe.wait(5)
    assert len(recorder) == sent, "a closed view sent something"
    refs = [weakref.ref(view), weakref.ref(panel), weakref.ref(view._chat)]
    del view, panel
    gc.collect()
    assert [r() for r in refs] == [None, None, None], "a closed widget is kept alive"
    leaked = {t for t in threading.enumerate() if t.name != "threadwidget-ticker"} - threads_before
    assert not [t for t in leaked if t.name != "threadwidget-feed"], leaked


def test_garbage_collected_controller_closes_its_subscription(store: tw.Store, comms: list[RecordingComm]) -> None:
    thread = store.create_thread()
    view = tw.ChatView(thread.id, store=store)
    sub = view._chat._slot.current
    assert sub is not None
    view._chat = None  # type: ignore[assignment]  # drop the only reference, as garbage collection would
    gc.collect()
    assert sub.closed
    view.close()


def test_a_missing_bundle_is_a_clear_error_at_construction() -> None:
    class Broken(TwWidget):
        _esm = Path("/nonexistent/threadwidget/static/chat.js")

    with pytest.raises(tw.MissingBundleError, match="npm run build") as info:
        Broken()
    assert isinstance(info.value, FileNotFoundError)


def test_bad_arguments_name_the_fix(store: tw.Store, comms: list[RecordingComm]) -> None:
    thread = store.create_thread()
    with pytest.raises(tw.InvalidArgumentError, match="window=0"):
        tw.ChatView(thread.id, store=store, window=0)
    with pytest.raises(tw.NotFoundError, match="th_missing"):
        tw.ChatView("th_missing", store=store)
    with pytest.raises(tw.InvalidArgumentError, match="AgentThread"):
        tw.ChatView(42, store=store)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tw.ChatView(thread.id, store=store, windw=5)  # type: ignore[call-arg]


# -- the tool-call panel, the thread list, the app ---------------------------------------------------


def test_tool_calls_panel_follows_calls_and_progress(store: tw.Store, comms: list[RecordingComm]) -> None:
    release = threading.Event()

    @tw.tool
    def slow_lookup(order_id: str, ctx: tw.ToolContext) -> dict:
        """Look up an order, slowly."""
        ctx.progress(0.5, "querying warehouse")
        release.wait(10)
        return {"order_id": order_id, "status": "shipped"}

    model = tw.ScriptedModel(tokens_per_second=200)
    calls = tw.ScriptedModel.tool_calls([("slow_lookup", {"order_id": "42"}), ("slow_lookup", {"order_id": "7"})])
    model.enqueue(calls, "Both shipped.")
    thread = tw.Agent("support", model=model, tools=[slow_lookup], store=store).create_thread()
    panel = tw.ToolCallsPanel(thread, limit=5)
    view = tw.ChatView(thread)
    assert panel.tool_calls == [] and panel.thread_id == thread.id
    runner = threading.Thread(target=thread.generate_text, args=("Where are 42 and 7?",))
    runner.start()
    running = {"status": "running", "progress": 0.5, "progress_note": "querying warehouse"}
    wait_until(lambda: len(panel.tool_calls) == 2 and all(running.items() <= c.items() for c in panel.tool_calls))
    wait_until(lambda: [c["status"] for c in newest(view).get("tool_calls", [])] == ["running", "running"])
    release.set()
    runner.join(30)
    wait_until(lambda: all(c["status"] == "success" for c in panel.tool_calls))
    wait_until(lambda: newest(view).get("text") == "Both shipped.")
    assert [json.loads(c["arguments"])["order_id"] for c in panel.tool_calls] == ["42", "7"]
    assert all(set(c) == TOOL_CALL_KEYS for c in panel.tool_calls)
    seen = {c["status"] for u in comm_of(panel).updates() for c in u.get("tool_calls", [])}
    assert seen >= {"streaming_args", "running", "success"}
    assert repr(panel).startswith(f"ToolCallsPanel(thread {thread.id}, 2 tool calls)")


def test_thread_list_orders_previews_and_follows(store: tw.Store, comms: list[RecordingComm]) -> None:
    old = store.create_thread(title="Old", user_id="alice", agent="support")
    store.add_message(old.id, role="user", text="x " * 100)
    store.create_thread(title="Bob's", user_id="bob")
    new = store.create_thread(title="New", user_id="alice")
    listing = tw.ThreadList(store, user_id="alice")
    assert [t["id"] for t in listing.threads] == [new.id, old.id]
    assert set(listing.threads[0]) == {"id", "title", "agent", "user_id", "updated_at", "preview"}
    assert listing.threads[0]["preview"] is None and len(listing.threads[1]["preview"]) <= 80
    picked: list[str | None] = []
    listing.observe(lambda change: picked.append(change["new"]), "selected")
    browser_sets(listing, selected=old.id)
    assert picked == [old.id] and listing.selected == old.id
    store.add_message(old.id, role="user", text="Back on top")
    wait_until(lambda: listing.threads[0]["id"] == old.id and listing.threads[0]["preview"] == "Back on top")
    third = store.create_thread(title="Third", user_id="alice")
    wait_until(lambda: listing.threads[0]["id"] == third.id)
    assert "ThreadList(" in repr(listing) and "Back on top" in repr(listing)


def test_thread_app_switches_chat_and_tools_in_one_update(store: tw.Store, comms: list[RecordingComm]) -> None:
    calls = tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"})])
    agent = make_agent(store, calls, "Shipped.", "Hello!")
    first = agent.create_thread(title="First")
    first.generate_text("Where is 42?")
    second = agent.create_thread(title="Second")
    second.generate_text("Hi")
    app = tw.ThreadApp(store, agent=agent)
    assert app.selected == second.id and app.thread_id == second.id and app.title == "Second"
    assert [t["id"] for t in app.threads] == [second.id, first.id] and app.tool_calls == []
    sent = len(comm_of(app))
    browser_sets(app, selected=first.id)
    switched = [u for u in comm_of(app).updates()[-3:] if "thread_id" in u]
    assert len(comm_of(app)) - sent <= 2, "an echo of `selected` and one update"
    (update,) = switched
    assert {"thread_id", "title", "messages", "tool_calls"} <= set(update)
    assert update["thread_id"] == first.id and update["tool_calls"][0]["name"] == "lookup_order"
    assert app.title == "First" and [m["role"] for m in app.messages] == ["user", "assistant", "assistant"]
    # a prompt with no thread selected starts one
    browser_sets(app, selected=None)
    assert app.thread_id == "" and app.messages == []
    browser_sends(app, {"kind": "send", "text": "A new question"})
    wait_until(lambda: app.selected not in (None, first.id, second.id))
    wait_until(lambda: answered(store, app.selected))
    assert store.get_thread(app.selected).title == "A new question"
    wait_until(lambda: app.threads[0]["id"] == app.selected)
    assert repr(app).startswith("ThreadApp(")
    viewer = tw.ThreadApp(store)  # no agent: a prompt needs a thread whose agent serves it
    browser_sets(viewer, selected=None)
    browser_sends(viewer, {"kind": "send", "text": "Hello?"})
    assert "No thread is selected" in viewer.error


def test_concurrent_requests_while_streaming(store: tw.Store, comms: list[RecordingComm]) -> None:
    """Handlers may run on any thread: load_older from several threads during a stream."""
    agent = make_agent(store, words(400), rate=800)
    thread = agent.create_thread()
    fill(store, thread.id, 60)
    view = tw.ChatView(thread, window=10)
    errors: list[BaseException] = []

    def hammer(k: int) -> None:
        try:
            for i in range(20):
                browser_sends(view, {"kind": "load_older", "request_id": f"{k}-{i}", "before": view.messages[0]["id"]})
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=lambda: list(thread.stream_text("Tell me")))
    writer.start()
    hammers = [threading.Thread(target=hammer, args=(k,)) for k in range(3)]
    for h in hammers:
        h.start()
    for h in [*hammers, writer]:
        h.join(30)
    assert not errors and view.error == ""
    answer = store.list_messages(thread.id, limit=1)[-1]
    wait_until(lambda: any(c["end"] for c in comm_of(view).customs("delta")))
    assert_chunks_cover(comm_of(view).customs("delta"), answer.id, answer.text)
    assert len(comm_of(view).customs("older")) == 60


def test_status_is_streaming_while_a_tool_of_the_answer_runs() -> None:
    from threadwidget.widgets._shapes import thread_status

    def msg(role: str, status: str, calls: tuple[str, ...] = ()) -> dict:
        tool_calls = [{"name": "slow_lookup", "status": s} for s in calls]
        return {"role": role, "status": status, "agent": "a", "error": None, "tool_calls": tool_calls}

    asked = msg("user", "success")
    assert thread_status([asked, msg("assistant", "success", ("running",))], None) == {
        "state": "streaming", "note": "Running slow_lookup…"
    }  # fmt: skip
    assert thread_status([asked, msg("assistant", "success", ("success",))], None)["state"] == "idle"
    assert thread_status([asked, msg("assistant", "streaming")], None)["state"] == "streaming"


def test_store_without_arguments_is_shared_per_process(comms: list[RecordingComm]) -> None:
    first, second = tw.Store(), tw.Store()
    assert first is second and tw.Agent("a", store=None).store is first  # one store, one watcher
    thread = first.create_thread(agent="a")
    assert tw.ChatView(thread.id).store is first
    assert tw.Store(first.path) is not first  # a path opens a store of its own
    first.close()
    third = tw.Store()
    assert third is not first and not third._closed
    third.close()


def live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name != "threadwidget-ticker"}


def test_closing_views_and_agents_leaks_no_thread_or_connection(store: tw.Store, comms: list[RecordingComm]) -> None:
    store.start_watching()
    before = live_threads()
    agent = make_agent(store)
    thread = agent.create_thread()
    view = tw.ChatView(thread)  # serves its thread while open
    view.send_prompt("Where is order 8?")
    wait_until(lambda: any(m.ends_answer for m in store.list_messages(thread.id)))
    worker = agent.serve()
    assert thread.ask("Where is order 9?").wait(timeout=10).status == "success"
    worker.stop()
    view.close()
    wait_until(lambda: live_threads() <= before)  # answer, keeper, serving threads: all gone
    gc.collect()
    conns = getattr(store._db, "_conns", ())  # SQLite: one per thread (PostgreSQL pools a few per process)
    assert {c.owner for c in conns} <= {t.ident for t in threading.enumerate()}  # closed with their threads


def test_a_read_only_store_disables_the_box_and_keeps_what_was_typed(
    store: tw.Store, comms: list[RecordingComm]
) -> None:
    thread = store.create_thread(agent="support")
    store._db.read_only = "threads.db is read-only here: ... chmod g+w ..."  # what Store finds at open
    view = tw.ChatView(thread.id, store=store)
    assert view.read_only == store.read_only  # the browser disables the box and says why
    browser_sends(view, {"kind": "send", "text": "typed before the box was disabled"})
    assert store.list_messages(thread.id) == [] and view.error == f"Not sent: {store.read_only}"
    assert comm_of(view).customs("unsent") == [{"kind": "unsent", "text": "typed before the box was disabled"}]


def test_a_view_of_a_thread_id_without_a_store_does_not_create_one(comms: list[RecordingComm]) -> None:
    default = tw.store.default_path()
    assert not default.exists()
    with pytest.raises(tw.InvalidArgumentError, match=r"default store .* does not exist; pass store="):
        tw.ChatView("th_0123")
    assert not default.exists()
