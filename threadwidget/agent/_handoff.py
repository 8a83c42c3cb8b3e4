"""Agents working together: a handoff gives the thread to another agent; an agent can be a tool.

``tw.Agent(..., handoffs=[confirm])`` shows the model a ``transfer_to_confirm`` tool. When the
model calls it, the answer goes on with ``confirm`` (its model, instructions and tools) from the
next step, seeing the whole thread; the thread's agent becomes ``confirm`` in the store
(``Store.hand_off``), so later prompts, and those already waiting, are answered by whoever serves
``confirm``. Every step records the agent that wrote it.

``billing.as_tool()`` is a tool that asks ``billing`` in a thread of its own (its metadata names
the calling thread and call; the call's progress note names the thread) and returns its answer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .._errors import AnswerTimeoutError, InvalidArgumentError, ModelError
from ._tools import Tool, ToolCancelled, ToolContext

if TYPE_CHECKING:
    from ._agent import Agent

__all__ = ["HandoffTool", "agent_tool", "reachable", "transfer_name"]

WAIT_SLICE = 0.25  # seconds between looks at an abort while a nested agent answers


def transfer_name(agent_name: str) -> str:
    """The tool name of a handoff to ``agent_name``: ``transfer_to_<name>`` in the characters tools allow."""
    return ("transfer_to_" + re.sub(r"[^a-zA-Z0-9_-]", "_", agent_name))[:64]


def _about(agent: Agent) -> str:
    first = (agent.instructions or "").strip().splitlines()
    return f" ({first[0][:200]})" if first else ""


class HandoffTool(Tool):
    """``transfer_to_<name>``: the answer goes on with ``target`` (no function runs)."""

    def __init__(self, target: Agent) -> None:
        def transfer() -> dict[str, str]:
            return {"transferred_to": target.name}

        super().__init__(
            transfer,
            name=transfer_name(target.name),
            description=f"Hand the conversation over to the agent {target.name!r}{_about(target)}. "
            "It sees the whole conversation and answers from now on.",
        )
        self.target = target


def reachable(agent: Agent) -> dict[str, Agent]:
    """``agent`` and every agent its handoffs lead to, by name (the first of a name wins)."""
    found: dict[str, Agent] = {}
    todo = [agent]
    while todo:
        a = todo.pop(0)
        if a.name in found:
            continue
        found[a.name] = a
        todo.extend(a.handoffs)
    return found


def agent_tool(agent: Agent, name: str | None = None, description: str | None = None) -> Tool:
    """A tool that asks ``agent`` (see ``Agent.as_tool``)."""
    tool_name = name if name is not None else re.sub(r"[^a-zA-Z0-9_-]", "_", agent.name)[:64]
    if description is None:
        description = f"Ask the agent {agent.name!r}{_about(agent)}; it answers the request in `input`."

    def ask_agent(input: str, ctx: ToolContext) -> str:
        parent = {"parent_thread_id": ctx.thread_id, "parent_call_id": ctx.call_id}
        child = agent.create_thread(title=f"{agent.name} for {tool_name}", metadata=parent)
        ctx.progress(None, f"{agent.name} answers in thread {child.id}")
        answer = child.ask(input)
        while True:
            try:
                answer.wait(timeout=WAIT_SLICE)
                break
            except AnswerTimeoutError:
                if ctx.cancelled:
                    answer.abort("the calling answer was aborted")
                    raise ToolCancelled(f"{agent.name} was stopped: the calling answer was aborted") from None
        if answer.status != "success":
            raise ModelError(f"{agent.name} did not answer ({answer.status}): {answer.error or 'no reason given'}")
        return answer.text

    ask_agent.__doc__ = description
    return Tool(ask_agent, name=tool_name, description=description)


def check_handoffs(agent: Agent, handoffs: Any) -> list[Agent]:
    """The ``handoffs=`` of ``agent``, checked: agents on the same store, with distinct tool names."""
    from ._agent import Agent

    out: list[Agent] = []
    for h in handoffs:
        if not isinstance(h, Agent):
            raise InvalidArgumentError(
                f"handoffs contains {h!r}, which is not a tw.Agent; pass the agents to hand over to, "
                "e.g. handoffs=[billing, confirm]."
            )
        if h.store is not agent.store and str(h.store.path) != str(agent.store.path):
            raise InvalidArgumentError(
                f"agent {h.name!r} writes into {h.store.path}, not {agent.store.path}; an agent hands a thread "
                "over only to agents of the same store: create both with the same store=."
            )
        if transfer_name(h.name) in agent.tools or any(transfer_name(o.name) == transfer_name(h.name) for o in out):
            raise InvalidArgumentError(
                f"the handoff tool {transfer_name(h.name)!r} clashes with another tool or handoff of agent "
                f"{agent.name!r}; rename the tool or the agent."
            )
        out.append(h)
    return out
