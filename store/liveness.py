"""Whether the process behind a run or a claim is still alive (light: no database code).

A run keeps ``alive_until`` ahead of the clock while it works and records its host and pid; a
claim's ``claimed_by`` is ``host:pid#token``. A process of this host can be asked directly;
another host's only by its heartbeat.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def this_host() -> str:
    return socket.gethostname()


def run_alive(
    status: str, host: str | None, pid: int | None, alive_until: datetime | None, now: datetime
) -> bool:
    """Whether a run whose row says ``status`` still works at ``now``."""
    if status != "running":
        return False
    if alive_until is None or alive_until < now:
        return False
    if host == this_host() and pid is not None:
        return pid_alive(pid)
    return True


def dead_local_owner(claimed_by: str) -> bool:
    """Whether ``claimed_by`` (``host:pid#token``) names a process of this host that is gone."""
    owner = claimed_by.split("#", 1)[0]
    host, _, pid = owner.rpartition(":")
    return host == this_host() and pid.isdigit() and not pid_alive(int(pid))
