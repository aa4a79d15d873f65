"""Ctrl-C, SIGTERM and dying parents: a stopped run ends KILLED with its files written,
and no process of bpexp outlives the command that started it.

- SIGINT (Ctrl-C) raises ``KeyboardInterrupt`` and SIGTERM (``kill PID``, ``timeout``,
  SLURM's time limit and preemption) raises :class:`Terminated`, a ``KeyboardInterrupt``:
  both stop the current run the same way.  The run's cleanup is not interrupted
  (:func:`deferred`), and neither is the way to it: once one has raised, the next ones
  are held back.  Until the cleanup begins, the interrupt is raised again every
  :data:`RETRY` seconds: one raised where Python ignores exceptions (a garbage
  collector's callback, such as SQLAlchemy's) would otherwise be lost.
- A process bpexp forks (a joblib worker) gets SIGTERM when the process that forked it
  dies, even by SIGKILL or the OOM killer (Linux's ``PR_SET_PDEATHSIG``), and ends its
  run as on SIGTERM; see :func:`die_with_parent`.
- A launching process that is stopped first stops its workers (SIGTERM) and waits until
  each has ended its run (:func:`linger`), so that joblib's own abort, which kills them with
  SIGKILL, finds nothing left to lose.
- At the end the process dies of the signal it got (:func:`exit_by`), as Python does on an
  unhandled Ctrl-C: the shell sees 130 or 143, and a calling script stops too.

All of this acts in a process's main thread (where Python runs signal handlers) and needs
Linux for the parts that read ``/proc`` or call ``prctl``; elsewhere they do nothing.
"""

from __future__ import annotations

import atexit
import ctypes
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

#: the signals that stop a run
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: how long a launcher waits for its workers to end their runs, and a stopped worker
#: for its launcher to end it (seconds): a run's cleanup writes a few files and makes a
#: few calls to the store, seconds when the store answers
STOP_WAIT = 60.0
#: a worker's process name once its run has ended (``ps -o comm``): the launcher's signal
#: that nothing is left to lose in it (see :func:`linger`)
STOPPED_NAME = b"bpexp-stopped"
#: seconds after which an interrupt that led to no cleanup (:func:`deferred`) is raised
#: again: far longer than the way from the raise to the cleanup takes
RETRY = 2.0
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
_SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread: a run stopped by it ends as on Ctrl-C."""

    def __init__(self) -> None:
        super().__init__("terminated (SIGTERM)")


def reason(exc: BaseException) -> str:
    """What stopped a run, for a person: ``interrupted (Ctrl-C)``, ``terminated (SIGTERM)``."""
    return str(exc) if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"


def signal_of(exc: KeyboardInterrupt) -> int:
    """The signal an interrupt stands for."""
    return signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT


# ---------------------------------------------------------------- the state
#: "launcher" in the process that ran ``main()``, "worker" in a process it forked or
#: that runs its jobs, None before :func:`install`
_role: str | None = None
#: the process whose death a worker outlives by at most :data:`STOP_WAIT` (see :func:`linger`)
_parent_pid: int | None = None
#: whether a worker is running a job (outside one, a signal makes it linger at once)
_in_job = False
#: the signal that stopped the process, once one has raised
_stopping: int | None = None
#: when it was last raised (``time.monotonic()``)
_raised_at = 0.0
#: whether a cleanup (:func:`deferred`) has begun since
_acknowledged = False
#: depth of :func:`deferred` sections
_deferring = 0
#: the first signal held back (by a deferred section or because the process is stopping)
_pending: int | None = None
_noted = False
#: the signal to die of once Python has finalized (see :func:`exit_by`)
_exit_signal: int | None = None


def _on_signal(signum: int, frame) -> None:
    global _pending, _noted
    if _stopping is not None and not (_deferring or _acknowledged):
        if time.monotonic() - _raised_at >= RETRY:
            _raise(_stopping)  # the last raise led nowhere: it was lost
    if _deferring or _stopping is not None:
        if _pending is None:
            _pending = signum
        if signum == signal.SIGINT and _stopping is not None and not _noted:
            # a person pressing Ctrl-C again: say why nothing happens (os.write: the
            # handler may run in the middle of a print to stderr)
            _noted = True
            os.write(2, b"bpexp: stopping: saving the runs' files first (Ctrl-\\ quits now)\n")
        return
    if _role == "worker" and not _in_job:
        linger(signum)
    _raise(signum)


def _raise(signum: int) -> None:
    """Stop: this process's workers first, then the run in progress here."""
    global _stopping, _raised_at
    if _stopping is None:
        _stopping = signum
        stop_children()
        if hasattr(signal, "pthread_kill"):  # POSIX
            threading.Thread(target=_retry, name="bpexp-stop", daemon=True).start()
    _raised_at = time.monotonic()
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _retry() -> None:
    """Signal the main thread again until a cleanup has begun (see :func:`_on_signal`)."""
    main = threading.main_thread().ident
    while True:
        if time.monotonic() - _raised_at < RETRY:
            time.sleep(0.1)
        elif _acknowledged or _deferring or signal.getsignal(_stopping) is not _on_signal:
            return
        else:
            signal.pthread_kill(main, _stopping)
            time.sleep(0.1)  # for the main thread to run the handler


def _unraisable(unraisable) -> None:
    """``sys.unraisablehook``: an interrupt Python had to ignore is raised again at once,
    and not shown (see the module docstring); anything else is shown as Python would."""
    global _raised_at
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _stopping is not None:
        _raised_at = -math.inf
        return
    sys.__unraisablehook__(unraisable)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def install(launcher: bool = False) -> None:
    """Handle SIGINT and SIGTERM in this process as the module docstring says.  Idempotent.

    ``launcher``: this is the process that runs the command (``main()``); every other
    process that calls it (a worker started by fork + exec) is a worker, and so is every
    process this one forks.  A signal the process was started with ignored (``nohup``,
    a job in the background of a script) stays ignored.
    """
    global _role, _parent_pid
    if not _main_thread():
        return
    if _role is None and launcher:
        _role = "launcher"
        if hasattr(os, "register_at_fork"):  # POSIX
            os.register_at_fork(after_in_child=_after_fork_in_child)
        atexit.register(_die_at_exit)  # registered early: among the last to run
    elif _role is None:
        _role, _parent_pid = "worker", os.getppid()
        die_with_parent(signal.SIGTERM)
    sys.unraisablehook = _unraisable
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) not in (signal.SIG_IGN, _on_signal):
            signal.signal(signum, _on_signal)


def _after_fork_in_child() -> None:
    global _role, _parent_pid, _in_job, _stopping, _acknowledged, _deferring, _pending, _noted
    _role, _in_job, _deferring, _pending, _noted = "worker", False, 0, None, False
    _stopping, _acknowledged = None, False
    _parent_pid = os.getppid()
    die_with_parent(signal.SIGTERM)


def die_with_parent(signum: int) -> None:
    """Have the kernel send ``signum`` to this process when its parent dies (Linux).

    The parent is the thread that forked this process: joblib's workers are forked by
    the launcher's main thread or by its executor's manager thread, which lasts as long
    as the workers.  If the parent died before this call, the signal is sent now.
    """
    if sys.platform != "linux":
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)


@contextmanager
def job():
    """The span of a job in a worker, where a signal raises (and stops the run) instead
    of making the worker linger at once."""
    global _in_job
    _in_job = True
    try:
        yield
    finally:
        _in_job = False


@contextmanager
def deferred():
    """A section that SIGINT and SIGTERM do not interrupt: one arriving in it is held
    back and raised at its end (unless the process is already stopping, when the
    exception on its way out stands for it).  Nested sections defer to the outermost.

    For cleanup that must end: a run's files and its final status.  Outside the main
    thread, where no signal handler runs, it does nothing.
    """
    global _deferring, _pending, _acknowledged
    if not _main_thread():
        yield
        return
    _acknowledged = _stopping is not None
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _pending is not None and _stopping is None:
            signum, _pending = _pending, None
            _raise(signum)


# ------------------------------------------------------ workers and launchers
def _stat(pid: int) -> tuple[str, int, str] | None:
    """A process's state letter, parent pid and name, from ``/proc``; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    state, ppid = text[text.rindex(")") + 2 :].split()[:2]
    return state, int(ppid), name


def _ignores_sigterm(pid: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) & _SIGTERM_BIT)
    except (OSError, ValueError):
        pass
    return True  # gone, or unreadable: nothing to wait for


def children() -> list[int]:
    """This process's live child processes (Linux; elsewhere none)."""
    me, found = os.getpid(), []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == me and stat[0] not in "ZX":
                found.append(int(entry))
    return found


def _ended(pid: int) -> bool:
    stat = _stat(pid)
    return stat is None or stat[0] in "ZX" or stat[2].encode() == STOPPED_NAME


def stop_children(timeout: float = STOP_WAIT) -> None:
    """Send SIGTERM to each child process that does not ignore it (joblib's workers: its
    resource tracker and bpexp's tracking process ignore it) and wait, at most
    ``timeout`` seconds, until each has ended its run (:func:`linger`) or exited."""
    targets = [pid for pid in children() if not _ignores_sigterm(pid)]
    for pid in targets:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    global _deferring
    deadline = time.monotonic() + timeout
    _deferring += 1  # a second Ctrl-C must not cut the wait short
    try:
        while targets and time.monotonic() < deadline:
            targets = [pid for pid in targets if not _ended(pid)]
            if targets:
                time.sleep(0.02)
    finally:
        _deferring -= 1


def linger(signum: int) -> None:
    """End a stopped worker: mark it stopped (:data:`STOPPED_NAME`), then wait, ignoring
    further signals, for its launcher to end it (joblib kills its workers when it
    aborts); die of ``signum`` when the launcher has gone or after :data:`STOP_WAIT`.

    A worker that exited instead would have joblib kill, at once, the workers still
    saving their runs.  Never returns.
    """
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    if sys.platform == "linux":
        try:
            ctypes.CDLL(None).prctl(_PR_SET_NAME, ctypes.c_char_p(STOPPED_NAME), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    deadline = time.monotonic() + STOP_WAIT
    while os.getppid() == _parent_pid and time.monotonic() < deadline:
        time.sleep(0.1)
    _die(signum)


def is_worker() -> bool:
    """Whether this process runs jobs for a launching process."""
    return _role == "worker"


# ------------------------------------------------------------------- the end
def _die(signum: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    time.sleep(1)  # the signal is delivered on the way back from kill, at the latest here
    os._exit(128 + signum)


def exit_by(exc: KeyboardInterrupt) -> None:
    """Leave the command as the interrupt it was stopped by: Python finalizes (atexit
    handlers, joblib's temporary files, log files), then the process dies of the
    signal, as an unhandled Ctrl-C does in Python.  Raises ``SystemExit`` (130 or
    143, the shell's numbers for those deaths, should the signal not be delivered)."""
    global _exit_signal, _deferring
    _exit_signal = signal_of(exc)
    _deferring += 1  # nothing to interrupt any more: the process dies of its signal
    raise SystemExit(128 + _exit_signal)


def _die_at_exit() -> None:
    if _exit_signal is not None and _role == "launcher":
        import logging

        logging.shutdown()
        _die(_exit_signal)
