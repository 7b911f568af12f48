"""Child-process helpers: start servers and workers that cannot outlive us.

:func:`spawn` starts a child that Linux kills (SIGTERM) when the spawning
thread dies, even by SIGKILL, so a crashed parent leaves no orphan servers.
:func:`stop` ends a child politely, then firmly, and always reaps it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["spawn", "stop"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    # Resolve prctl here, in the parent: dlopen() between fork and exec can
    # deadlock when another thread held the loader lock at fork time.
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would signal us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    **kw: Any,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as a child process that dies with its parent.

    On Linux the child gets ``PR_SET_PDEATHSIG = SIGTERM``. The signal fires
    when the *thread* that called :func:`spawn` exits, so call it from a
    thread that lives as long as the child should (normally the main thread).

    Args:
        argv: the program and its arguments.
        env: variables added to (or overriding) this process's environment.
        log_path: file that receives the child's stdout and stderr (appended);
            ``None`` leaves them as ``kw`` or the parent's say.
        **kw: passed to :class:`subprocess.Popen` (``cwd``, ``start_new_session``...).

    Returns:
        The running process; end it with :func:`stop`.
    """
    child_env = None
    if env is not None:
        child_env = {**os.environ, **env}
    if sys.platform.startswith("linux") and "preexec_fn" not in kw:
        kw["preexec_fn"] = _die_with_parent(os.getpid())
    kw.setdefault("stdin", subprocess.DEVNULL)
    if log_path is None:
        return subprocess.Popen([os.fspath(a) for a in argv], env=child_env, **kw)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # The child keeps its own copy of the descriptor; ours closes when Popen returns.
    with open(log_path, "ab") as log:
        kw.setdefault("stdout", log)
        kw.setdefault("stderr", subprocess.STDOUT)
        return subprocess.Popen([os.fspath(a) for a in argv], env=child_env, **kw)


def stop(proc: subprocess.Popen[Any], timeout: float = 5.0) -> int:
    """Stop ``proc``: SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; always reap.

    Returns:
        The process's exit status (negative for a signal, as in ``Popen.returncode``).
    """
    if proc.poll() is not None:
        return proc.returncode
    # Popen.send_signal ignores a child that is already gone.
    proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
