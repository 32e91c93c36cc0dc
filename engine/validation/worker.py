"""The validation worker: a short-lived process that checks one job under hard limits and exits.

Started by :mod:`engine.validation.bounded` as ``python -m engine.validation.worker``. It imports everything and
loads the XSD first (so a spare worker waits ready), then applies its limits (address space, CPU seconds, no files
written, no child processes), reads one job as JSON from stdin, and writes the problems as JSON to stdout. Before
each slow step it writes the step to stderr (:mod:`.progress`), so the web process can blame the right element
when the kernel stops the worker. A ``MemoryError`` is reported here, for the step it happened in.

Nothing here touches the database or the network: a job carries its files.
"""
from __future__ import annotations

import base64
import json
import os
import sys

STEP_MARK = "@@bangban-step "   # a line on stderr: STEP_MARK + JSON of a progress.Step
MAX_JOB_BYTES = 64 * 1024 * 1024


def _limit(memory_mb: int, cpu_seconds: int) -> None:
    try:
        import resource
    except ImportError:          # not on this platform: the web process still enforces the wall time
        return
    import signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # a write to a file fails instead of killing the worker
    wanted = [(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 2)),
              (resource.RLIMIT_FSIZE, (0, 0)),
              (resource.RLIMIT_CORE, (0, 0))]
    if memory_mb > 0:
        wanted.append((resource.RLIMIT_AS, (memory_mb * 1024 * 1024, memory_mb * 1024 * 1024)))
    for which, (soft, hard) in wanted:
        try:
            current_soft, current_hard = resource.getrlimit(which)
            if current_hard != resource.RLIM_INFINITY:
                hard = min(hard, current_hard)
                soft = min(soft, hard)
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):   # a limit this system will not lower (macOS and RLIMIT_AS): the others hold
            pass


def _step_writer(step) -> None:
    sys.stderr.write(STEP_MARK + json.dumps(step.__dict__, ensure_ascii=False) + "\n")
    sys.stderr.flush()


def _files(raw: dict) -> dict[str, bytes]:
    return {str(k): base64.b64decode(v) for k, v in raw.items()}


def run(job: dict) -> list[dict]:
    from . import validate_bpmn_file, validate_set
    if job.get("kind") == "set":
        problems = validate_set(_files(job["files"]))
    else:
        context = _files(job["context"]) if job.get("context") is not None else None
        problems = validate_bpmn_file(str(job["name"]), base64.b64decode(job["data"]), context)
    return [p.to_dict() for p in problems]


def main() -> int:
    sys.dont_write_bytecode = True
    if hasattr(os, "nice"):
        os.nice(10)          # the server's own requests come first when a validation and they want the same core
    from . import progress, validate_set  # noqa: F401 - imported before the limits, while memory is plentiful
    from .xmlsafety import _xsd
    _xsd()
    _limit(int(os.environ.get("BANGBAN_WORKER_MEMORY_MB", "0") or 0),
           int(os.environ.get("BANGBAN_WORKER_CPU_SECONDS", "30") or 30))
    raw = sys.stdin.buffer.read(MAX_JOB_BYTES + 1)
    if not raw:
        return 0                     # the web process went away before giving a job
    progress.listen(_step_writer)
    try:
        result = {"problems": run(json.loads(raw))}
    except MemoryError:
        result = {"memory": True}
    except RecursionError:
        result = {"recursion": True}
    sys.stdout.write(json.dumps(result, ensure_ascii=False))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
