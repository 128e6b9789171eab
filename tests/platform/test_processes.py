"""Stopping by pid (platform/infra/processes.py): a recorded pid is only stopped while it is the process recorded."""

from __future__ import annotations

import json
import os
import subprocess

from mritune.platform.infra import local_cluster
from mritune.platform.infra.processes import (ServiceProcess, live_session_pids, start_in_new_session, stop_session,
                                              stop_sessions)


def test_a_reused_pid_is_not_ours_and_down_leaves_it_alone(tmp_path):
    sleeper = start_in_new_session(["sleep", "300"], env=dict(os.environ), log=tmp_path / "sleep.log")
    try:
        recorded = ServiceProcess.of("sleeper", sleeper)
        assert recorded.is_alive()
        impostor = ServiceProcess(name="ray-head", pid=sleeper.pid, start_ticks=recorded.start_ticks + 1)
        assert not impostor.is_alive()

        state_dir = tmp_path / "state"
        state_dir.mkdir()
        (state_dir / local_cluster.STATE_FILE).write_text(json.dumps({
            "processes": [vars(impostor)], "temp_dirs": [],
        }))
        assert local_cluster.down(state_dir=state_dir) == []
        assert sleeper.poll() is None and not state_dir.exists()

        stop_sessions([recorded.pid], grace_s=5)
        sleeper.wait(timeout=10)
        assert not live_session_pids(recorded.pid) and not recorded.is_alive()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_stopping_a_reaped_leader_leaves_the_process_now_holding_its_pid_alone(tmp_path):
    """A service that exited (and was reaped) long before its fixture stops it: by then the kernel may have given
    its pid to another process. The Popen is pointed at a live bystander's pid, as the kernel would reuse it."""
    bystander = start_in_new_session(["sleep", "300"], env=dict(os.environ), log=tmp_path / "sleep.log")
    try:
        exited = start_in_new_session(["true"], env=dict(os.environ), log=tmp_path / "true.log")
        exited.wait(timeout=30)
        exited.pid = bystander.pid  # the number the kernel handed on
        stop_session(exited)
        assert bystander.poll() is None, "a process that merely holds a reaped leader's old pid was stopped"
        stop_session(bystander)
        assert bystander.poll() is not None and not live_session_pids(bystander.pid)
    finally:
        if bystander.poll() is None:
            bystander.kill()
            bystander.wait()
