"""``threadwidget serve``: find the agent named by ``MODULE:AGENT`` and tally the answers it writes."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections import Counter
from typing import TYPE_CHECKING, Any

import click
from rich.text import Text

from .._errors import NotFoundError, ThreadwidgetError
from .._usage import Usage
from ..store import Message, Store
from ._render import MARKS, STYLES, clip, duration, local_time, usage_text

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = ["Answers", "answer_line", "load_agent"]


def load_agent(target: str) -> Agent:
    """``MODULE:AGENT`` → the Agent (or what a zero-argument callable of that name returns)."""
    from ..agent import Agent

    module_name, _, attr = target.partition(":")
    example = "e.g. `threadwidget serve my_agents:support` for `support = tw.Agent(...)` in my_agents.py"
    if not (module_name and attr and all(p.isidentifier() for p in [*module_name.split("."), *attr.split(".")])):
        raise click.ClickException(f"{target!r} is not MODULE:AGENT; {example}.")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name + ".").startswith(exc.name + "."):
            raise click.ClickException(
                f"no module named {module_name!r} in {os.getcwd()} or on sys.path. Run from the directory "
                f"that holds {module_name.replace('.', '/')}.py, or install the package; {example}."
            ) from None
        raise click.ClickException(f"importing {module_name!r} failed: {exc}.") from None
    except ThreadwidgetError:
        raise  # already says what is wrong and how to fix it (e.g. a --db in a missing directory)
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        own = [f for f in frames if f.filename.startswith(os.getcwd() + os.sep)] or frames  # the user's code
        where = f" at {own[-1].filename}:{own[-1].lineno}" if own else ""
        raise click.ClickException(f"importing {module_name!r} raised {type(exc).__name__}: {exc}{where}.") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            agents = sorted(k for k, v in vars(module).items() if isinstance(v, Agent))
            there = f"agents defined there: {', '.join(agents)}" if agents else f"define one: `{attr} = tw.Agent(...)`"
            raise click.ClickException(f"module {module_name!r} has no attribute {attr!r}; {there}.")
        obj = getattr(obj, part)
    if not isinstance(obj, Agent) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise click.ClickException(f"calling {target}() raised {type(exc).__name__}: {exc}.") from None
    if not isinstance(obj, Agent):
        raise click.ClickException(
            f"{target} is of type {type(obj).__name__}, not a tw.Agent; point MODULE:AGENT at a tw.Agent or at a "
            "function that returns one."
        )
    return obj


class Answers:
    """Collects the steps of one agent's answers until each one's last step (``ends_answer``)."""

    def __init__(self, agent: str):
        self.agent = agent
        self.counts: Counter[str] = Counter()
        self.usage = Usage()
        self.open: set[str] = set()
        self._done: set[str] = set()
        self._steps: dict[str, tuple[float, Usage]] = {}  # prompt id -> (answer start, usage so far)

    def add(self, m: Message) -> tuple[Message, float, Usage] | None:
        """The answer's last step, its start and its usage, once it ended; else None."""
        if m.role != "assistant" or m.agent != self.agent or m.id in self._done:
            return None
        if not m.is_final:
            self.open.add(m.id)
            return None
        self._done.add(m.id)
        self.open.discard(m.id)
        key = m.reply_to or m.id
        start, used = self._steps.pop(key, (m.created_at, Usage()))
        used += m.usage or Usage()
        if not m.ends_answer:  # more steps follow
            self._steps[key] = (start, used)
            return None
        self.counts[m.status] += 1
        self.usage += used
        return m, start, used


def answer_line(store: Store, m: Message, start: float, used: Usage) -> Text:
    line = Text(f"{local_time(m.updated_at)}  ", style="dim")
    line.append(f"{MARKS.get(m.status, '·')} {m.status:<8}", style=STYLES.get(m.status, ""))
    line.append(f" {m.thread_id}", style="cyan")
    try:
        title = store.get_thread(m.thread_id).title
    except NotFoundError:
        title = None
    if title:
        line.append(f"  {clip(title, 40)}")
    line.append(f"  {duration(start, m.updated_at)} · {usage_text(used)}", style="dim")
    if m.error:
        line.append(f"  {clip(m.error, 200)}", style=STYLES.get(m.status, ""))
    return line
