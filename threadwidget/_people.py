"""Who is at the keyboard: the name a view, a decision or a prompt is recorded under by default."""

from __future__ import annotations

import getpass
import os

__all__ = ["current_user"]


def current_user() -> str:
    """``$JUPYTERHUB_USER`` (a JupyterHub user's name), else the login name, else ``"someone"``."""
    hub = os.environ.get("JUPYTERHUB_USER", "").strip()
    if hub:
        return hub
    try:
        return getpass.getuser() or "someone"
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "someone"
