"""The README's demo command (scripts/demo.sh) comes up, proves the tunnel
and stops: with --once right after its check, and on Ctrl-C (SIGINT to its
process group, as a terminal sends it) within a second, leaving no process
of its behind."""
import os
import signal
import subprocess
import time

import mrlib


def demo_cmd(*args):
    return ["bash", os.path.join(mrlib.molerat_src(), "scripts", "demo.sh"), *args]


def group_gone(proc, within):
    """True when no process of proc's group is left within `within` seconds
    (proc, the group's leader and our child, is reaped as it ends)."""
    pgid = proc.pid
    end = time.monotonic() + within
    while time.monotonic() < end:
        proc.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


def test_demo_once_stops():
    p = subprocess.Popen(demo_cmd("--once"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True, text=True)
    try:
        out, _ = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 0, out
    assert "Fetched through the tunnel just now: \"Hello from behind the NAT" in out, out
    # the web service, server and client it started are gone with it
    assert group_gone(p, 1.0), subprocess.run(["ps", "-o", "pid,args", "-g", str(p.pid)],
                                                  capture_output=True, text=True).stdout


def test_demo_ctrl_c_stops_within_a_second():
    p = subprocess.Popen(demo_cmd(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        assert any("Press Ctrl-C" in l for l in lines), "".join(lines)
        members = subprocess.run(["pgrep", "-g", str(p.pid)], capture_output=True, text=True).stdout.split()
        assert len(members) >= 4, members     # the script, the web service, server, client
        t0 = time.monotonic()
        os.killpg(p.pid, signal.SIGINT)
        assert group_gone(p, 1.0), "processes left a second after Ctrl-C: " + subprocess.run(
            ["ps", "-o", "pid,args", "-g", str(p.pid)], capture_output=True, text=True).stdout
        assert p.wait(timeout=1) == 0
        assert time.monotonic() - t0 < 1.0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
