"""Child-process hygiene for the embedded stack: children die with their parent, never become orphans."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

__all__ = ["child_preexec"]

_PR_SET_PDEATHSIG = 1


def child_preexec() -> None:
    """Run in the child between fork and exec: new process group, and SIGTERM when the parent dies.

    The process group keeps a terminal's Ctrl-C (sent to the foreground group) away from the children, so the parent
    can stop them itself, in order, by pid. ``PR_SET_PDEATHSIG`` makes the kernel send SIGTERM to the child if the
    parent dies without stopping it (even by SIGKILL): no orphans.
    """
    os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
