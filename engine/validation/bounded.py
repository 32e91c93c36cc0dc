"""Validation in a separate process with hard limits, so no diagram can stall or bloat the server.

:func:`validate_set` and :func:`validate_bpmn_file` have the signatures of the in-process checks in
:mod:`engine.validation`, and are what the use cases and the command line call. Each job runs in its own worker
process (:mod:`.worker`) that ends with the job: memory it took is given back, nothing it did stays. To keep the
answer quick, one spare worker per server process waits with everything imported (a cold start costs ~0.4 s).

Limits (environment, read when first used):

- ``BANGBAN_VALIDATION_MEMORY_MB`` (1024): address space of the worker (``RLIMIT_AS``);
- ``BANGBAN_VALIDATION_CPU_SECONDS`` (20): CPU time (``RLIMIT_CPU``: the kernel stops even a single long C call);
- ``BANGBAN_VALIDATION_SECONDS`` (40): wall time, enforced by the waiting server process, which kills the worker;
- ``BANGBAN_VALIDATION_WORKERS`` (2): validations at once per server process; more wait, and after the wall time
  get 503 「流程校验繁忙」.

A worker stopped by a limit gives one Chinese 「资源超限」 problem naming the step and element it was on (from the
progress lines it writes, :mod:`.progress`). The web process only waits on pipes: its other requests go on.
"""
from __future__ import annotations

import atexit
import base64
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from ..config import ints_from_env
from ..errors import Unavailable
from .common import Problem
from .worker import STEP_MARK

ROOT = Path(__file__).resolve().parent.parent.parent
MAX_REPLY_BYTES = 32 * 1024 * 1024
# how the kernel ends a worker over its CPU time: SIGXCPU at the soft limit, SIGKILL at the hard one
_CPU_SIGNALS = {-getattr(signal, name) for name in ("SIGXCPU", "SIGKILL") if hasattr(signal, name)}
_PROBLEM_FIELDS = tuple(Problem.__dataclass_fields__)


@dataclass(frozen=True)
class WorkerLimits:
    memory_mb: int = 1024
    cpu_seconds: int = 20
    seconds: int = 40
    workers: int = 2

    @classmethod
    def from_env(cls) -> "WorkerLimits":
        return ints_from_env(cls, "BANGBAN_VALIDATION_")


class _Pool:
    """Worker processes for this server process: one spare waiting, at most ``workers`` jobs at once."""

    def __init__(self, limits: WorkerLimits):
        self.limits = limits
        self.slots = threading.BoundedSemaphore(limits.workers)
        self.lock = threading.Lock()
        self.spare: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        env["BANGBAN_WORKER_MEMORY_MB"] = str(self.limits.memory_mb)
        env["BANGBAN_WORKER_CPU_SECONDS"] = str(self.limits.cpu_seconds)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        try:
            return subprocess.Popen([sys.executable, "-m", "engine.validation.worker"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=env,
                                    start_new_session=True)
        except OSError as exc:
            raise Unavailable(f"无法启动流程校验进程（{exc.strerror or exc}），请联系管理员") from exc

    def _take(self) -> subprocess.Popen:
        with self.lock:
            proc, self.spare = self.spare, None
        if proc is None or proc.poll() is not None:
            proc = self._start()
        threading.Thread(target=self._refill, daemon=True, name="validation-spare").start()
        return proc

    def _refill(self) -> None:
        try:
            fresh = self._start()
        except Unavailable:
            return
        with self.lock:
            old, self.spare = self.spare, fresh
        if old is not None:
            _stop(old)

    def run(self, job: dict) -> list[Problem]:
        if not self.slots.acquire(timeout=self.limits.seconds):
            raise Unavailable("流程校验繁忙（同时进行的校验已达上限），请稍后再试")
        try:
            return self._run(job)
        finally:
            self.slots.release()

    def _run(self, job: dict) -> list[Problem]:
        proc = self._take()
        payload = json.dumps(job, ensure_ascii=False).encode("utf-8")
        try:
            out, err = proc.communicate(payload, timeout=self.limits.seconds)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill(proc)
            out, err = proc.communicate()
            timed_out = True
        except BrokenPipeError:          # the worker died before reading the job (it could not start)
            out, err = proc.communicate()
            timed_out = False
        return _reply(out, err, proc.returncode, timed_out, self.limits)

    def close(self) -> None:
        with self.lock:
            proc, self.spare = self.spare, None
        if proc is not None:
            _stop(proc)


def _kill(proc: subprocess.Popen) -> None:
    """End the worker and anything it started (it leads its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        proc.kill()


def _stop(proc: subprocess.Popen) -> None:
    _kill(proc)
    proc.communicate()          # reaps it and closes its pipes


def _last_step(err: bytes) -> dict:
    for line in reversed(err.decode("utf-8", "replace").split("\n")):
        if line.startswith(STEP_MARK):
            try:
                return json.loads(line[len(STEP_MARK):])
            except ValueError:
                continue
    return {}


def _reply(out: bytes, err: bytes, code: int | None, timed_out: bool, limits: WorkerLimits) -> list[Problem]:
    """The worker's problems; or, when a limit stopped it, one 资源超限 problem for the step it was on."""
    reply: dict = {}
    if not timed_out and code == 0 and out and len(out) <= MAX_REPLY_BYTES:
        try:
            reply = json.loads(out)
        except ValueError:
            reply = {}
    if isinstance(reply.get("problems"), list):
        return [Problem(**{k: p[k] for k in _PROBLEM_FIELDS if k in p})
                for p in reply["problems"] if isinstance(p, dict)]
    if timed_out:
        why = f"用时超过 {limits.seconds} 秒上限"
    elif reply.get("memory"):
        why = f"占用内存超过 {limits.memory_mb} MB 上限"
    elif reply.get("recursion"):
        why = "嵌套过深（递归层数超限）"
    elif code in _CPU_SIGNALS:
        why = f"CPU 时间超过 {limits.cpu_seconds} 秒上限"
    else:
        why = f"校验进程异常退出（退出码 {code}）"
    step = _last_step(err)
    where = f"进行到「{step['what']}」时，" if step.get("what") else ""
    return [Problem(f"资源超限：校验{where}{why}，已中止，其余检查未完成。请检查此处的表达式，或精简流程图",
                    step.get("file"), step.get("line"), step.get("element"))]


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _Pool(WorkerLimits.from_env())
            atexit.register(shutdown)
        return _pool


def shutdown() -> None:
    """Stop the spare worker (tests; a server that ends takes its spare with it: it reads EOF and exits)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
        _pool = None


def _encode(files: dict[str, bytes]) -> dict[str, str]:
    return {name: base64.b64encode(bytes(data)).decode("ascii") for name, data in files.items()}


def validate_set(files: dict[str, bytes]) -> list[Problem]:
    """:func:`engine.validation.validate_set`, in a bounded worker process."""
    return pool().run({"kind": "set", "files": _encode(files)})


def validate_bpmn_file(name: str, data: bytes, context: dict[str, bytes] | None = None) -> list[Problem]:
    """:func:`engine.validation.validate_bpmn_file`, in a bounded worker process."""
    return pool().run({"kind": "file", "name": name, "data": base64.b64encode(bytes(data)).decode("ascii"),
                       "context": _encode(context) if context is not None else None})
