"""A signal during start-up ends the command quietly, never with a traceback.

Python itself and `import extract` (~35 ms, lazy) run before any handler can exist; from the moment the entry
module has installed its handlers (seen here in /proc/PID/status SigCgt as SIGTERM caught: Python itself
catches SIGINT from the start, SIGTERM never, and the entry module installs both together) every later phase of start-up --
the CLI's imports -- must answer a signal with one line and an exit code. The signal is sent within a few ms of
the handlers appearing, while the entry module imports the CLI (20-300 ms). Later phases are the CLI's own
(tests/test_hostile_batch.py): there a signal that lands inside a weakref callback during a lazy import is reported
by Python as "Exception ignored" and the command runs on to its end (a known limit of raising from a handler).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads /proc/PID/status (Linux)"
)


def _catches(pid: int, signum: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("extra_delay", [0.0, 0.002, 0.005])
def test_signal_during_start_up_is_quiet(signum: int, extra_delay: float) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CEREBRAS_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "extract", "schema", "schemas/contact.json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 20
    while not _catches(proc.pid, signal.SIGTERM) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(extra_delay)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    text = err.decode("utf-8", "replace")
    assert "Traceback" not in text, text
    # 0: it had already finished; -signum: it re-raised the signal to die by it, as shells expect
    assert proc.returncode in (0, 130, 143, -signal.SIGINT, -signal.SIGTERM), (proc.returncode, text)


def test_interrupt_while_the_cli_installs_its_handlers_is_an_interrupt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a signal can land while `main` installs (or restores) its own handlers, outside its inner try:
    # it must still end as an interrupt (exit 130, one line), never as a traceback
    import extract.cli as cli

    real = signal.signal

    def interrupted(signum: int, handler: object) -> object:
        if signum == signal.SIGTERM:
            monkeypatch.setattr(signal, "signal", real)
            raise KeyboardInterrupt
        return real(signum, handler)  # type: ignore[arg-type]

    monkeypatch.setattr(signal, "signal", interrupted)
    assert cli.main(["--help"]) == cli.EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err
