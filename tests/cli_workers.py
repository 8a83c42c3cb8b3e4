"""Processes the command-line tests start: ``python tests/cli_workers.py COMMAND ARGS``."""

from __future__ import annotations

import sys

import threadwidget as tw

#: the answer ``write`` streams: 60 distinct words
WORDS = " ".join(f"w{i:02d}" for i in range(60))


def write(db: str, thread_id: str, pause_after: str) -> None:
    """Stream a 60-word answer at 100 tokens/s. Once ``w<pause_after>`` has been streamed, print
    ``paused`` and wait for a line on stdin before streaming the rest; print ``done`` at the end."""
    store = tw.Store(db)
    model = tw.ScriptedModel(tokens_per_second=100)
    model.enqueue(WORDS)
    agent = tw.Agent("writer", model=model, store=store)
    streamed, paused = "", False
    for piece in agent.continue_thread(thread_id).stream_text("stream sixty words please"):
        streamed += piece
        if not paused and f"w{int(pause_after):02d}" in streamed:
            paused = True
            print("paused", flush=True)
            sys.stdin.readline()
    final = store.list_messages(thread_id, limit=1)[-1]
    print(f"done {final.status}", flush=True)
    store.close()


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
