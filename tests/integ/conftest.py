"""Fixtures for molerat's integration tests (real server and client processes
on 127.0.0.1, generated configs in tmp_path).

Environment: MOLERAT_BIN (default /work/main/build/molerat), MOLERAT_SRC,
MOLERAT_SHARED; MOLERAT_ASAN=1 (or an ASan binary, detected) shrinks the
bulk sizes by 4 and stretches time limits by 3; MOLERAT_TEST_LOG sets the
log level of the processes (default debug; the logs are in tmp_path and
shown for failing tests)."""
import os
import resource

import pytest

import mrlib


def pytest_configure(config):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


def pytest_report_header(config):
    return [f"molerat: {mrlib.molerat_bin()} asan={mrlib.is_asan()}"]


@pytest.fixture(scope="session", autouse=True)
def _binary_exists():
    b = mrlib.molerat_bin()
    assert os.path.isfile(b) and os.access(b, os.X_OK), f"MOLERAT_BIN={b} is not an executable file"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def procs(tmp_path, request):
    """Starts molerat processes; at teardown stops every one with SIGINT
    (bounded, then SIGKILL) and fails the test if one did not exit 0 (a
    crash, a sanitizer report, a hang) unless the test marked it
    expect_exit."""
    p = mrlib.Procs(tmp_path)
    yield p
    problems = p.cleanup()
    rep = getattr(request.node, "rep_call", None)
    if (rep is not None and rep.failed) or problems:
        print(p.dump())
    assert not problems, "\n".join(problems)


@pytest.fixture(params=["splice", "copy"])
def relay(request):
    """Relay mode: 'splice' (MOLERAT_RELAY unset) or 'copy'."""
    return request.param


@pytest.fixture
def echo():
    s = mrlib.EchoServer()
    yield s
    s.close()


@pytest.fixture
def services():
    """Extra local services a test starts; closed at teardown."""
    started = []

    class _S:
        def echo(self, port=0):
            s = mrlib.EchoServer(port)
            started.append(s)
            return s

        def reply(self, port=0, tag=b"R"):
            s = mrlib.ReplyAfterEofServer(port, tag)
            started.append(s)
            return s

    yield _S()
    for s in started:
        s.close()


@pytest.fixture
def fake_server():
    """mrlib.FakeServer, closed after the test."""
    f = mrlib.FakeServer()
    yield f
    f.close()
