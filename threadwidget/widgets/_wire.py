"""The messages between kernel and browser, typed: the Python side of ``js/src/protocol.ts``.

Each TypedDict here has the name and the fields of its TypeScript twin; ``tests/test_wire.py``
generates a JSON schema from each side (``ts-json-schema-generator`` on protocol.ts, pydantic on
``WIRE``) and fails on any difference in names, fields, required-ness or types. "Inbound" and
"outbound" are the browser's words, as in protocol.ts: ``InboundMsg`` goes to the views.

Messages from the browser are checked at the door (``parse_outbound``): a handler only ever sees a
well-formed ``OutboundMsg``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from typing_extensions import NotRequired, TypedDict  # pydantic reads TypedDicts from here before 3.12

from .._statuses import Decision, MessageStatus, Role, ToolCallStatus

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = [
    "WIRE", "AbortMsg", "AnswerCost", "AppTraits", "BranchMsg", "BranchPlace", "ChatTraits", "DecideMsg",
    "DeltaMsg", "EditMsg", "EvalCaseRow", "EvalFailure", "EvalReportTraits", "ForkMsg", "HighlighterMsg",
    "RegenerateMsg",
    "HighlighterRequestMsg", "InboundMsg", "LoadOlderMsg", "Message", "OlderMsg", "OutboundMsg", "PresentUser",
    "SearchHitInfo", "SendMsg", "SnippetPart", "StreamSnapshot", "ThreadInfo", "ThreadListTraits", "ThreadState",
    "ThreadStatus", "ToolCall", "ToolsTraits", "TypingMsg", "UnsentMsg", "Usage", "parse_outbound",
    "UsageBy", "UsageMetric", "UsagePanelTraits", "UsageRow",
]  # fmt: skip

ThreadState = Literal["idle", "waiting", "streaming", "failed", "aborted"]


class Usage(TypedDict):
    input_tokens: int
    output_tokens: int
    cached_input_tokens: NotRequired[int]  # of input_tokens, read from a prompt cache; only when some were


class ToolCall(TypedDict):
    id: str
    message_id: str
    call_id: str
    name: str
    arguments: str  # JSON text; partial while the model streams the arguments
    status: ToolCallStatus
    progress: float | None  # 0..1, None when the tool reports none
    progress_note: str | None
    result: str | None  # JSON text
    error: str | None
    started_at: float | None  # unix seconds
    ended_at: float | None
    decision: Decision | None  # a person's decision on a call that waited for one
    decided_by: str | None
    decided_at: float | None  # unix seconds
    decision_note: str | None  # the approver's note, or why it was denied


class AnswerCost(TypedDict):
    """What an answer cost, on its last step: as people read it ("0.0012 $", "no price", "~" for
    an estimate), and the details shown on hover."""

    answer: str
    thread: str  # the thread, through this answer
    detail: str  # tokens of the answer and of the thread, the model and the price used


class Message(TypedDict):
    id: str
    role: Role
    text: str
    status: MessageStatus
    error: str | None
    agent: str | None
    model: str | None
    created_at: float  # unix seconds
    usage: Usage | None
    tool_calls: list[ToolCall]
    user_id: str | None  # who wrote it: a prompt's person, or the person of a human answer
    queue_position: NotRequired[int]  # only on a prompt waiting for the thread's turn (1: next)
    cost: NotRequired[AnswerCost]  # only on an answer's last step, once it ended
    branch: NotRequired[BranchPlace]  # only where there is a choice: a prompt's versions, an answer's alternatives


class BranchPlace(TypedDict):
    """Which of the versions of a prompt (or alternatives of an answer, on its first step) the path shows."""

    index: int  # from 0
    count: int  # 2 or more


class ThreadInfo(TypedDict):
    id: str
    title: str | None
    agent: str | None
    user_id: str | None
    updated_at: float  # unix seconds
    preview: str | None


class SnippetPart(TypedDict):
    text: str
    mark: bool  # a word the query matched


class SearchHitInfo(TypedDict):
    thread_id: str
    thread_title: str | None
    message_id: str
    role: Role
    created_at: float  # unix seconds
    parts: list[SnippetPart]  # the snippet, plain text, in order


class StreamSnapshot(TypedDict):
    """The answer being streamed: its whole text through delta ``seq``."""

    message_id: str
    seq: int
    text: str


class PresentUser(TypedDict):
    """Another person with the thread open in a view (any process sharing the store)."""

    user: str
    typing: bool


class ThreadStatus(TypedDict):
    state: ThreadState
    note: str


# -- synced traits -----------------------------------------------------------------------------------


class ChatTraits(TypedDict):
    thread_id: str
    title: str
    messages: list[Message]  # an update may carry only the newest part of the window (see protocol.ts)
    stream: StreamSnapshot | None
    status: ThreadStatus
    has_older: bool
    agent_attached: bool
    error: str
    user: str  # the person using this view: their messages are "You", others' show their name
    present: list[PresentUser]  # the other people who have the thread open now, by name
    read_only: NotRequired[str]  # why this kernel may only read the store ("" when it can write)
    connection: NotRequired[str]  # why the view is not live ("" when it is): the store's server is away
    path: NotRequired[str]  # changes when the thread's current path does: the view shows ``messages`` afresh
    highlighted: NotRequired[str]  # a message to show highlighted and scroll to (a search hit; "": none)
    budget: NotRequired[str]  # why new prompts are refused now, a budget reached ("" when they are not)


class ToolsTraits(TypedDict):
    thread_id: str
    tool_calls: list[ToolCall]  # newest last


class ThreadListTraits(TypedDict):
    threads: list[ThreadInfo]  # newest activity first
    selected: str | None  # set by the view
    query: str  # set by the view: the search box ("": no search)
    hits: list[SearchHitInfo]  # the messages the query finds, best first
    search_error: str  # why the query cannot be searched ("" when it can)


class AppTraits(ChatTraits, ToolsTraits, ThreadListTraits):
    pass


UsageBy = Literal["day", "agent", "model", "thread", "user"]
UsageMetric = Literal["tokens", "usd"]


class UsageRow(TypedDict):
    """One part of a bar of the usage chart, and one row of its table: a group and a part of it."""

    group: str  # a UTC day, an agent, a model, a thread id or a user ("(no agent)": none)
    part: str  # the stacked part: the model (the agent when the chart is per model)
    input_tokens: int
    cached_input_tokens: int  # of input_tokens, read from a prompt cache
    output_tokens: int
    usd: str | None  # exact decimal dollars; None: no price
    cost: str  # as people read it: "0.12 $", "no price", "~" before an estimate
    estimated: bool


class UsagePanelTraits(TypedDict):
    by: UsageBy
    part_by: Literal["model", "agent"]
    since: str | None  # as given, e.g. "7d"; None: all the store
    metric: UsageMetric  # the chart's height: tokens or dollars (the view toggles it)
    rows: list[UsageRow]  # groups in chart order, each group's parts most first
    groups: list[UsageRow]  # each group's sum (part ""), in chart order
    total: UsageRow  # group and part ""
    selected: str | None  # the group whose bar was clicked: the table shows only its rows


# -- custom messages, kernel -> browser ----------------------------------------------------------------


class DeltaMsg(TypedDict):
    """Text of deltas ``first_seq..seq`` of a message (contiguous, from 1); ``end``: it is final."""

    kind: Literal["delta"]
    message_id: str
    first_seq: int
    seq: int
    text: str
    end: bool


class OlderMsg(TypedDict):
    """Reply to ``load_older``."""

    kind: Literal["older"]
    request_id: str
    messages: list[Message]
    has_older: bool


class UnsentMsg(TypedDict):
    """A prompt that could not be sent: its text goes back into the box."""

    kind: Literal["unsent"]
    text: str


class HighlighterMsg(TypedDict):
    """Reply to ``highlighter``: the module of js/src/highlight.ts, base64 of its gzip."""

    kind: Literal["highlighter"]
    source: str


InboundMsg = DeltaMsg | OlderMsg | UnsentMsg | HighlighterMsg


# -- custom messages, browser -> kernel ----------------------------------------------------------------


class SendMsg(TypedDict):
    kind: Literal["send"]
    text: str


class AbortMsg(TypedDict):
    kind: Literal["abort"]


class LoadOlderMsg(TypedDict):
    kind: Literal["load_older"]
    request_id: str
    before: str


class DecideMsg(TypedDict):
    """A person's decision on a tool call that waits (the Approve / Deny buttons); ``note``: the
    note or reason typed with it ("" for none)."""

    kind: Literal["decide"]
    tool_call_id: str
    decision: Decision
    note: str


class TypingMsg(TypedDict):
    """The person started (``true``) or stopped typing in the box."""

    kind: Literal["typing"]
    typing: bool


class HighlighterRequestMsg(TypedDict):
    """A view shows code to highlight and its page has no highlighter yet."""

    kind: Literal["highlighter"]


class RegenerateMsg(TypedDict):
    """Answer the prompt of this answer's step again (the view's agent writes it)."""

    kind: Literal["regenerate"]
    message_id: str


class EditMsg(TypedDict):
    """A new version of the prompt ``message_id`` with ``text``, answered like a sent prompt."""

    kind: Literal["edit"]
    message_id: str
    text: str


class ForkMsg(TypedDict):
    """Copy the path up to this message into a new thread, and show that one."""

    kind: Literal["fork"]
    message_id: str


class BranchMsg(TypedDict):
    """Show version (or alternative) ``index`` of this message, for everyone."""

    kind: Literal["branch"]
    message_id: str
    index: int


OutboundMsg = (
    SendMsg | AbortMsg | LoadOlderMsg | DecideMsg | TypingMsg | HighlighterRequestMsg | RegenerateMsg | EditMsg
    | ForkMsg | BranchMsg
)  # fmt: skip


class EvalFailure(TypedDict):
    expectation: str
    diff: str  # plain text, never HTML


class EvalCaseRow(TypedDict):
    name: str
    passed: bool
    thread_id: str | None  # None when the case could not run
    failures: list[EvalFailure]


class EvalReportTraits(TypedDict):
    agent: str
    cases: list[EvalCaseRow]


#: What goes over the wire, by the names of protocol.ts: every shape is reachable from these.
WIRE: dict[str, Any] = {
    "ChatTraits": ChatTraits,
    "ToolsTraits": ToolsTraits,
    "ThreadListTraits": ThreadListTraits,
    "AppTraits": AppTraits,
    "UsagePanelTraits": UsagePanelTraits,
    "EvalReportTraits": EvalReportTraits,
    "InboundMsg": InboundMsg,
    "OutboundMsg": OutboundMsg,
}


@cache
def _outbound() -> TypeAdapter[OutboundMsg]:
    from pydantic import Field, TypeAdapter

    return TypeAdapter(Annotated[OutboundMsg, Field(discriminator="kind")])


def parse_outbound(content: object) -> OutboundMsg | None:
    """``content`` from a view as an ``OutboundMsg``, or None when it is not one (strict: no
    coercion; keys the message does not have are dropped)."""
    from pydantic import ValidationError

    try:
        return _outbound().validate_python(content, strict=True)
    except ValidationError:
        return None
