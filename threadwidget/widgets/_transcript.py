"""Static HTML transcripts: what a view shows where no kernel runs it.

A view's display bundle carries, beside the live widget, a ``text/html`` transcript of what the
view showed when it was displayed: read by GitHub, nbviewer, ``jupyter nbconvert --to html``, an
unrun JupyterLab that does not trust the notebook, a PDF export of the HTML. JupyterLab with a
kernel shows the widget instead (its renderer ranks above HTML).

Pure functions from the shapes the views already hold (``_wire``, built from store rows) to one
HTML string. The same safety as the live view (js/src/markdown.ts): markdown-it renders raw HTML in
the text as text, and nh3 (Rust's ammonia) keeps only text markup: no scripts, styles, event
handlers, images, media or frames; links only to http(s), mailto and relative addresses, with
``rel="noopener noreferrer nofollow"``. Nothing in a transcript loads anything from elsewhere:
images become links, and the style block is ours, under ``.tw-transcript``.

Bounded: at most ``MESSAGES`` messages, each text clipped at ``MESSAGE_CHARS`` characters and all
of them, with the tool calls' JSON, within ``TOTAL_CHARS`` (the newest first; what is clipped or
left out says so). Rendered markdown past ``HTML_GROWTH`` times its text is shown as plain text,
so a transcript stays under ``MAX_CHARS`` characters whatever the thread holds.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from .._statuses import LIVE_STATUSES
from .._text import one_line
from . import _wire as wire
from ._shapes import handed_to
from ._shapes import who as _who

if TYPE_CHECKING:
    import nh3
    from markdown_it import MarkdownIt

__all__ = [
    "CSS", "MAX_CHARS", "MESSAGES", "chat_body", "chat_transcript", "render_markdown", "thread_list_body",
    "tool_calls_body", "wrap",
]  # fmt: skip

#: messages shown by default (a view's ``transcript_messages`` changes it)
MESSAGES = 50
#: characters of one message's text shown; the rest is counted
MESSAGE_CHARS = 10_000
#: characters of text and tool-call JSON shown in one transcript, newest messages first
TOTAL_CHARS = 100_000
#: characters of a tool call's arguments, and of its result or error
JSON_CHARS = 1_000
#: tool calls shown under one message
CALLS_PER_MESSAGE = 10
#: characters of a name, title, model or note (they are shown on one line)
NAME_CHARS = 200
#: rendered markdown larger than this many times its text (plus 1 kB) is shown as plain text instead
HTML_GROWTH = 8
#: threads of a thread list shown
THREADS = 50
#: the characters a transcript can take: shown text grows at most HTML_GROWTH times (escaped text
#: at most 5 times), plus the markup of each message (names, times, statuses) and tool call, and CSS
MAX_CHARS = HTML_GROWTH * TOTAL_CHARS + 3_000 * (MESSAGES + 1) + 1_500 * MESSAGES * CALLS_PER_MESSAGE + 10_000

#: containers (``>``, list levels) on one line rendered as markdown; deeper text is plain (as in the
#: live view: markdown-it stops at its own limit of 20 and drops what follows)
MAX_NESTING = 16
#: rendering markdown stops after this long; later (older) messages are shown as plain text
MARKDOWN_SECONDS = 0.25

_LANGUAGE = re.compile(r"language-[\w+.-]{1,40}")
_CONTAINERS = re.compile(r"^([ \t]*)((?:>[ \t]*|(?:[-+*]|\d{1,9}[.)])(?:[ \t]+|$))+)", re.MULTILINE)
_MARKER = re.compile(r">|[-+*]|\d{1,9}[.)]")

CSS = """
.tw-transcript {
  --twt-fg: var(--jp-content-font-color1, #1f1f1f);
  --twt-muted: var(--jp-content-font-color2, #5f6368);
  --twt-bg: var(--jp-layout-color1, #ffffff);
  --twt-raised: var(--jp-layout-color2, #f1f3f4);
  --twt-border: var(--jp-border-color2, #dadce0);
  --twt-link: var(--jp-content-link-color, #1a61c4);
  --twt-error: var(--jp-error-color1, #c5221f);
  --twt-warn: var(--jp-warn-color1, #b06000);
  --twt-mono: var(--jp-code-font-family, SFMono-Regular, Menlo, Consolas, monospace);
  color: var(--twt-fg); background: var(--twt-bg);
  font-family: var(--jp-content-font-family, system-ui, sans-serif); font-size: 13px; line-height: 1.45;
  border: 1px solid var(--twt-border); border-radius: 8px; padding: 4px 12px; max-width: 60rem;
  box-sizing: border-box; overflow-wrap: anywhere;
}
@media (prefers-color-scheme: dark) {
  .tw-transcript {
    --twt-fg: var(--jp-content-font-color1, #e3e3e3); --twt-muted: var(--jp-content-font-color2, #a8abb0);
    --twt-bg: var(--jp-layout-color1, #1e1f22); --twt-raised: var(--jp-layout-color2, #2b2d31);
    --twt-border: var(--jp-border-color2, #44474d); --twt-link: var(--jp-content-link-color, #8ab4f8);
    --twt-error: var(--jp-error-color1, #f28b82); --twt-warn: var(--jp-warn-color1, #fdd663);
  }
}
.tw-transcript .twt-head { margin: 6px 0; font-weight: 600; }
.tw-transcript .twt-note { color: var(--twt-muted); font-size: 12px; margin: 6px 0; }
.tw-transcript .twt-msg { border-top: 1px solid var(--twt-border); padding: 6px 0; }
.tw-transcript .twt-who { font-weight: 600; }
.tw-transcript .twt-meta { color: var(--twt-muted); font-size: 12px; }
.tw-transcript .twt-badge { font-size: 12px; padding: 0 6px; border-radius: 8px; background: var(--twt-raised); }
.tw-transcript .twt-bad { color: var(--twt-error); }
.tw-transcript .twt-live { color: var(--twt-warn); }
.tw-transcript .twt-body > :first-child { margin-top: 4px; }
.tw-transcript .twt-body > :last-child { margin-bottom: 4px; }
.tw-transcript .twt-plain { white-space: pre-wrap; margin: 4px 0; }
.tw-transcript .twt-error { color: var(--twt-error); margin: 4px 0; white-space: pre-wrap; }
.tw-transcript a { color: var(--twt-link); }
.tw-transcript pre, .tw-transcript code { font-family: var(--twt-mono); font-size: 12px; }
.tw-transcript pre { background: var(--twt-raised); padding: 6px 8px; border-radius: 6px; overflow-x: auto;
  white-space: pre-wrap; }
.tw-transcript :not(pre) > code { background: var(--twt-raised); padding: 0 3px; border-radius: 4px; }
.tw-transcript pre code { background: none; padding: 0; color: inherit; }
.tw-transcript blockquote { margin: 4px 0; padding-left: 10px; border-left: 3px solid var(--twt-border);
  color: var(--twt-muted); }
.tw-transcript table { border-collapse: collapse; margin: 4px 0; }
.tw-transcript th, .tw-transcript td { border: 1px solid var(--twt-border); padding: 2px 6px; }
.tw-transcript .twt-call { border-left: 3px solid var(--twt-border); margin: 6px 0; padding: 0 0 0 10px; }
.tw-transcript .twt-call pre { margin: 2px 0 4px; max-height: 16em; overflow: auto; }
.tw-transcript .twt-label { color: var(--twt-muted); font-size: 12px; }
.tw-transcript ul.twt-threads { padding-left: 18px; }
"""


# -- markdown --------------------------------------------------------------------------------------


@cache
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

    def image(_renderer: Any, tokens: Any, idx: int, _options: Any, _env: Any) -> str:
        # An image would load from its address: a link to it instead (nh3 checks the address).
        token = tokens[idx]
        alt = "".join(child.content for child in token.children or ()) or "image"
        return f'<a href="{html.escape(token.attrGet("src") or "")}">{html.escape(alt)}</a>'

    md.add_render_rule("image", image)
    return md


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "class":  # only a code block's language: model text must not borrow page styles
        return " ".join(c for c in value.split() if tag == "code" and _LANGUAGE.fullmatch(c)) or None
    return value


@cache
def _cleaner() -> nh3.Cleaner:
    import nh3

    tags = {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "li", "pre", "code",
        "em", "strong", "del", "s", "a", "table", "thead", "tbody", "tr", "th", "td",
    }  # fmt: skip
    return nh3.Cleaner(
        tags=tags,
        attributes={"a": {"href", "title"}, "ol": {"start"}, "code": {"class"}},
        attribute_filter=_keep_attribute,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )


def _too_deep(text: str) -> bool:
    """Whether a line of ``text`` opens more than ``MAX_NESTING`` containers (``>``, list items; two
    columns of indentation count as a level under a marker): markdown-it stops parsing there and
    drops the rest of the text."""
    for match in _CONTAINERS.finditer(text):
        indent, markers = match.group(1), match.group(2)
        if len(_MARKER.findall(markers)) + len(indent.expandtabs(4)) // 2 > MAX_NESTING:
            return True
    return False


@lru_cache(maxsize=256)  # finished messages never change: a view shown again renders none again
def render_markdown(text: str) -> str:
    """Markdown ``text`` as sanitised HTML. As plain text, so that nothing is dropped or swollen,
    when it nests deeper than ``MAX_NESTING`` or its markup would grow it past ``HTML_GROWTH``
    times (tables of thousands of cells, floods of emphasis), or it cannot be parsed.
    ~1.3 ms per 1,000 characters of ordinary markdown (markdown-it-py); remembered for 256 texts."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # as markdown-it does: lines end in \n
    if _too_deep(text):
        return _plain(text)
    try:
        rendered = _cleaner().clean(_markdown().render(text))
    except Exception:  # one bad message must not cost the transcript
        return _plain(text)
    return rendered if len(rendered) <= HTML_GROWTH * len(text) + 1_000 else _plain(text)


def _plain(text: str) -> str:
    return f'<p class="twt-plain">{html.escape(text, quote=False)}</p>' if text else ""


# -- pieces ------------------------------------------------------------------------------------------


class _Budget:
    """The characters of text a transcript may still show (the newest messages take first), and
    until when it may render markdown."""

    def __init__(self, chars: int = TOTAL_CHARS) -> None:
        self.left = chars
        self.until = time.perf_counter() + MARKDOWN_SECONDS

    def markdown(self, text: str) -> str:
        return render_markdown(text) if time.perf_counter() < self.until else _plain(text)

    def take(self, text: str, limit: int) -> tuple[str, int]:
        """(``text`` cut to ``limit`` and to what is left, how many characters were cut)."""
        shown = text[: max(0, min(limit, self.left))]
        self.left -= len(shown)
        return shown, len(text) - len(shown)


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _name(text: str | None) -> str:
    """A name, title or note: escaped, on one line, clipped."""
    return _esc(one_line(text or "", NAME_CHARS))


def _note(text: str) -> str:
    return f'<p class="twt-note">{text}</p>'


def _more(cut: int) -> str:
    return _note(f"… clipped: {cut:,} more characters in the store.") if cut else ""


def _when(at: float | None) -> str:
    if not at:
        return ""
    moment = time.gmtime(at)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", moment)
    return f'<time datetime="{time.strftime("%Y-%m-%dT%H:%M:%SZ", moment)}">{stamp}</time>'


def _badge(label: str, kind: str) -> str:
    return f' <span class="twt-badge {kind}">{_esc(label)}</span>' if label else ""


_ANSWER_LABELS = {"pending": "starting…", "streaming": "streaming…", "failed": "failed", "aborted": "stopped"}


def _message_badge(m: wire.Message) -> str:
    """The message's status where it is not plainly finished."""
    status = m["status"]
    if m["role"] == "user":
        label = {"pending": "queued", "aborted": "cancelled", "failed": "failed"}.get(status, "")
        if status == "pending" and m.get("queue_position"):
            label = f"queued · #{m['queue_position']}"
    else:
        label = _ANSWER_LABELS.get(status, "")
    return _badge(label, "twt-live" if status in LIVE_STATUSES else "twt-bad")


def _json_block(label: str, text: str, budget: _Budget) -> str:
    shown, cut = budget.take(text, JSON_CHARS)
    more = f"\n… clipped: {cut:,} more characters" if cut else ""
    return f'<div class="twt-label">{label}</div><pre>{_esc(shown + more)}</pre>'


def _tool_call(call: wire.ToolCall, budget: _Budget) -> str:
    status = call["status"]
    label = {"streaming_args": "receiving arguments…", "running": "running…", "error": "error",
             "awaiting_approval": "awaiting approval"}.get(status, "")  # fmt: skip
    if call.get("decision"):
        label = f"{call['decision']} by {call['decided_by'] or 'nobody named'}" + (f" · {label}" if label else "")
    if status == "running" and call["progress"] is not None:
        label = f"running · {round(100 * call['progress'])}%"
        if call["progress_note"]:
            label += f" · {one_line(call['progress_note'], NAME_CHARS)}"
    parts = [
        f'<div class="twt-call" data-status="{_esc(status)}"><div><code>{_name(call["name"])}</code>',
        _badge(label, "twt-bad" if status == "error" else "twt-live"),
        "</div>",
        _json_block("arguments", call["arguments"], budget),
    ]
    if call.get("decision_note"):
        parts.append(_json_block("note" if call["decision"] == "approved" else "reason", call["decision_note"] or "",
                                 budget))  # fmt: skip
    if call["error"]:
        parts.append(_json_block("error", call["error"], budget))
    elif call["result"] is not None:
        parts.append(_json_block("result", call["result"], budget))
    parts.append("</div>")
    return "".join(parts)


def _message(m: wire.Message, text: str, budget: _Budget, me: str | None) -> str:
    shown, cut = budget.take(text, MESSAGE_CHARS)
    if m["role"] == "assistant":
        body = budget.markdown(shown)
        if not text and m["status"] in LIVE_STATUSES:
            body = _note("(no text yet)")
    else:  # prompts are shown as typed, as in the live view
        body = _plain(shown)
    error = ""
    if m["status"] in ("failed", "aborted"):
        default = "The answer failed." if m["status"] == "failed" else "Stopped."
        said, error_cut = budget.take(m["error"] or default, JSON_CHARS)
        error = f'<p class="twt-error">{_esc(said)}{"…" if error_cut else ""}</p>'
    calls = m["tool_calls"][:CALLS_PER_MESSAGE]
    call_html = "".join(_tool_call(c, budget) for c in calls)
    if len(m["tool_calls"]) > len(calls):
        call_html += _note(f"{len(m['tool_calls']) - len(calls)} more tool calls not shown.")
    meta = " · ".join(x for x in (_name(m["model"]), _when(m["created_at"])) if x)
    to = handed_to(m)
    handoff = _note(f"── handed over to {_name(to)} ──") if to else ""
    return "".join(
        [
            f'<div class="twt-msg" data-role="{_esc(m["role"])}" data-status="{_esc(m["status"])}"><div>',
            f'<span class="twt-who">{_name(_who(m, me))}</span>{_message_badge(m)}',
            f' <span class="twt-meta">{meta}</span>' if meta else "",
            f'</div><div class="twt-body">{body}{_more(cut)}</div>{error}{call_html}{handoff}</div>',
        ]
    )


def wrap(kind: str, body: str) -> str:
    """A transcript's ``body`` in its frame: the scoped style, and when the copy was made."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    note = _note(f"A copy of the view as it was when displayed ({stamp}). Run the notebook to see it live.")
    return f'<div class="tw-transcript" data-kind="{kind}"><style>{CSS}</style>{body}{note}</div>'


# -- transcripts -------------------------------------------------------------------------------------


def chat_body(
    messages: Sequence[wire.Message],
    *,
    title: str,
    status: wire.ThreadStatus,
    earlier: int = 0,
    streamed: Mapping[str, str] | None = None,
    limit: int = MESSAGES,
    me: str | None = None,
) -> str:
    """A chat transcript without its frame (``ThreadApp`` puts it under its thread list), as the
    person ``me`` reads it (their prompts are "You")."""
    budget = _Budget()
    window = list(messages[-limit:]) if limit > 0 else []
    earlier += len(messages) - len(window)
    shown: list[str] = []
    for m in reversed(window):  # the newest first: they take the budget
        if budget.left <= 0:
            break
        shown.append(_message(m, (streamed or {}).get(m["id"], m["text"]), budget, me))
    earlier += len(window) - len(shown)
    parts = [f'<div class="twt-head">{_name(title or "Untitled thread")}</div>']
    if earlier:
        parts.append(_note(f"{earlier:,} earlier message{'s' if earlier != 1 else ''} not shown."))
    if not shown and not earlier:
        parts.append(_note("No messages yet."))
    parts.extend(reversed(shown))
    if status["state"] != "idle":
        kind = "twt-bad" if status["state"] in ("failed", "aborted") else "twt-live"
        said = f": {_name(status['note'])}" if status["note"] else ""
        parts.append(_note(f'<span class="{kind}">{_esc(status["state"])}</span>{said}'))
    return "".join(parts)


def chat_transcript(
    messages: Sequence[wire.Message],
    *,
    title: str,
    status: wire.ThreadStatus,
    earlier: int = 0,
    streamed: Mapping[str, str] | None = None,
    limit: int = MESSAGES,
) -> str:
    """One thread as static HTML: ``title``, the last ``limit`` of ``messages`` (thread order, each
    with its tool calls), how many came before them (``earlier``, plus those past ``limit``), the
    thread's ``status``. ``streamed``: the text so far of answers being written (message id → text)."""
    body = chat_body(messages, title=title, status=status, earlier=earlier, streamed=streamed, limit=limit)
    return wrap("chat", body)


def tool_calls_body(calls: Sequence[wire.ToolCall], *, limit: int = MESSAGES, more: bool = False) -> str:
    """A thread's tool calls (oldest first): the last ``limit``; ``more``: there may be earlier ones
    than ``calls``."""
    budget = _Budget()
    window = list(calls[-limit:]) if limit > 0 else []
    shown = []
    for call in reversed(window):
        if budget.left <= 0:
            break
        shown.append(_tool_call(call, budget))
    parts = ['<div class="twt-head">Tool calls</div>']
    if more or len(shown) < len(calls):
        parts.append(_note(f"The last {len(shown)} tool calls; earlier ones are not shown."))
    if not calls:
        parts.append(_note("No tool calls yet."))
    parts.extend(reversed(shown))
    return "".join(parts)


def thread_list_body(threads: Sequence[wire.ThreadInfo], selected: str | None) -> str:
    """A store's threads (newest activity first), the selected one in bold."""
    items = []
    for th in threads[:THREADS]:
        title = _name(th["title"] or "Untitled")
        if th["id"] == selected:
            title = f"<strong>{title}</strong>"
        preview = f" — {_name(th['preview'])}" if th["preview"] else ""
        items.append(f'<li>{title} <span class="twt-meta">{_when(th["updated_at"])}</span>{preview}</li>')
    parts = ['<div class="twt-head">Threads</div>']
    parts.append(f'<ul class="twt-threads">{"".join(items)}</ul>' if items else _note("No threads yet."))
    if len(threads) > THREADS:
        parts.append(_note(f"{len(threads) - THREADS} more threads not shown."))
    return "".join(parts)
