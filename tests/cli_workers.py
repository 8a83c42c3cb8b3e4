"""Processes the command-line tests start: ``python tests/cli_workers.py COMMAND ARGS``."""

from __future__ import annotations

import sys

import threadwidget as tw

#: the answer ``write`` streams: 60 distinct words
WORDS = " ".join(f"w{i:02d}" for i in range(60))


class PausingModel(tw.ScriptedModel):
    """Streams ``WORDS``; once ``w<pause_after>`` has been streamed, prints ``paused`` and holds the
    stream until a line arrives on stdin."""

    def __init__(self, pause_after: str) -> None:
        super().__init__(tokens_per_second=100)
        self.enqueue(WORDS)
        self.mark = f"w{int(pause_after):02d}"

    def stream(self, messages, tools):  # type: ignore[no-untyped-def]
        inner = super().stream(messages, tools)
        mark = self.mark

        class Held:
            def close(self) -> None:
                inner.close()

            def __iter__(self):  # type: ignore[no-untyped-def]
                for event in inner:
                    yield event
                    if getattr(event, "text", "").strip() == mark:
                        print("paused", flush=True)
                        sys.stdin.readline()

        return Held()


def write(db: str, thread_id: str, pause_after: str) -> None:
    """Stream a 60-word answer at 100 tokens/s, held after ``w<pause_after>`` until a line arrives
    on stdin (see ``PausingModel``); print ``done <status>`` at the end."""
    store = tw.Store(db)
    agent = tw.Agent("writer", model=PausingModel(pause_after), store=store)
    answer = agent.continue_thread(thread_id).ask("stream sixty words please").wait()
    print(f"done {answer.status}", flush=True)
    store.close()


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
