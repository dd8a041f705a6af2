"""benchmarks/profile.py: how a py-spy leaf frame is filed (kernel, collector, ours)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.profile import component, components


def test_frames_are_filed_by_component() -> None:
    assert component("write (libc.so.6)") == "kernel: write"
    assert component("syscall (libc.so.6)") == "kernel: syscall() (libuv: close)"
    assert component("epoll_pwait (libc.so.6)") == "idle (epoll_pwait)"
    assert component("gc_collect_main (libpython3.11.so.1.0)") == "cyclic garbage collector"
    assert component("request_head (proxy/upstream_request.py:75)") == (
        "cors-edge: upstream_request.py"
    )
    assert component("StreamWriter._writelines (aiohttp/http_writer.py:116)") == (
        "aiohttp (Python)"
    )
    assert component("Py_DECREF (object.h:123)") == "interpreter, libc and C extensions"


def test_shares_are_of_the_busy_samples(tmp_path: Path) -> None:
    raw = tmp_path / "stacks.txt"
    raw.write_text(
        "process 1;Runner.run (asyncio/runners.py:118);epoll_pwait (libc.so.6) 50\n"
        "process 1;EdgeServer.handle (proxy/server.py:130) 25\n"
        "process 1;write (libc.so.6) 75\n"
    )
    report = components(raw)
    assert "100 busy samples, 50 idle" in report
    assert "  75.0  kernel: write" in report
    assert "  25.0  cors-edge: server.py" in report
