"""Background services started by mritune (``mritune cluster local``) and by the tests: start, wait, stop by pid.

This machine may be shared: nothing here ever stops a process it did not start (never `ray stop`, never a kill by
name). Each service is started in a new session (``start_new_session=True``) and stopped by the session id it
got: Ray's workers put themselves in process groups of their own, so stopping a process group would miss them,
while the session id is what they all share. A recorded pid is only signalled while the process still has the
start time recorded with it, so a pid the kernel has since reused is left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STOP_GRACE_S = 15.0


@dataclass(frozen=True, kw_only=True)
class ServiceProcess:
    """A started service: the leader of its session, and the kernel's start time of that pid (clock ticks)."""

    name: str
    pid: int
    start_ticks: int

    @classmethod
    def of(cls, name: str, process: subprocess.Popen) -> "ServiceProcess":
        return cls(name=name, pid=process.pid, start_ticks=process_start_ticks(process.pid) or 0)

    def is_alive(self) -> bool:
        """Something of its session still runs. A leader that died may leave members behind (they are still
        ours: Linux does not reuse a pid while it names a live session); a leader pid now held by another
        process (another start time) is not ours, nor is its session."""
        ticks = process_start_ticks(self.pid)
        if ticks is not None and ticks != self.start_ticks:
            return False
        return bool(live_session_pids(self.pid))


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free right now on 127.0.0.1 (all held open together so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_until(condition: Callable[[], object], *, timeout_s: float, what: str,
               process: subprocess.Popen | None = None, log: Path | None = None, interval_s: float = 0.25):
    """Poll `condition` until it returns something truthy; fail with `what` (and the log's tail) at the deadline.

    Raises:
        RuntimeError: `process` exited before the condition held.
        TimeoutError: The condition did not hold within `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {process.returncode}{log_tail(log)}")
        time.sleep(interval_s)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f} s{log_tail(log)}")


def start_in_new_session(command: list[str], *, env: dict[str, str], log: Path,
                         user: str | None = None) -> subprocess.Popen:
    """Start `command` as the leader of a new session, its output appended to `log`; as `user` if given."""
    with open(log, "ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, user=user)


def stop_sessions(leaders: list[int], *, grace_s: float = STOP_GRACE_S) -> None:
    """Stop every process of the sessions these pids lead: SIGTERM to each leader, a grace period, SIGKILL.

    `ray start --block` shuts its node down in order on SIGTERM (about 3 s); signalling every process at once
    is slower, because gcs_server and raylet then wait out their own timeouts. Several sessions are stopped
    together so their grace periods overlap.
    """
    for leader in leaders:
        _signal(leader, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(live_session_pids(leader) for leader in leaders):
        time.sleep(0.2)
    for leader in leaders:
        for pid in live_session_pids(leader):
            _signal(pid, signal.SIGKILL)


def stop_session(*processes: subprocess.Popen) -> None:
    """`stop_sessions` for processes this process started, then reap them.

    A leader that already exited and was reaped no longer holds its pid: the kernel may have given the number to
    another process or thread since (pid_max is 32768 on these machines, and every thread takes a number). Its
    session is left alone when something else holds the number now; otherwise what is left of it is ours.
    """
    stop_sessions([process.pid for process in processes if _session_still_ours(process)])
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_S)


def _session_still_ours(process: subprocess.Popen) -> bool:
    # An unreaped child (running, or a zombie) keeps its pid; a reaped one's number is ours only while no process
    # holds it (its session's members, if any are left, keep the number from being reused as another session's).
    return process.poll() is None or _stat_fields(process.pid) is None


def live_session_pids(session: int) -> list[int]:
    """Processes (not zombies) whose session id is `session`, read from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None and int(fields[3]) == session and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def process_start_ticks(pid: int) -> int | None:
    """The process's start time after boot in clock ticks (/proc/PID/stat field 22), or None if it is gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None else None


def console_script(name: str) -> str:
    """The venv's own executable `name` (`ray`, `mlflow`, `weed`), whatever PATH says.

    Raises:
        FileNotFoundError: Neither beside this Python nor on PATH.
    """
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"no `{name}` executable beside {sys.executable} or on PATH")
    return found


def log_tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    return "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: state is [0], session [3], start time [19]."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return stat[stat.rfind(")") + 2:].split()


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
