#!/usr/bin/env python
"""Latency benchmark of the bangban case service (see bench/README.md).

    python bench/bench.py [--runs 30] [--db sqlite|postgres] [--json out.json]

Figures (each over ``--runs`` runs after ``--warmup`` unmeasured runs; median, p90, min in ms):

  (a)   the minimal three-task process (bench/minimal) driven over HTTP against ``bangban serve`` (waitress) on
        127.0.0.1: POST /api/cases, 3 x (GET /api/tasks + POST /api/tasks/<id>/complete), GET /api/cases/<no>.
  (b)   the full 帮办代办 lifecycle (processes/, three service items) over HTTP, one session per role.
  (c)   both processes run through SpiffWorkflow alone, in memory (engine.runtime.CaseRun; the floor).
  (cs)  (c) plus the workflow-state JSON round trips the service does per request (CaseRun.load / dump).
  (c')  both processes through the engine use cases (engine.services.Bangban) on the database, no HTTP.
  (t)   both processes through the Flask app in-process (Flask test client): HTTP layer without sockets.

Also: SQL statements per request type (SQLAlchemy ``before_cursor_execute``) and a cProfile of (a) in-process.
All traffic goes to 127.0.0.1; server subprocesses are stopped on exit, also on errors and signals.
"""
from __future__ import annotations

import argparse
import atexit
import cProfile
import http.client
import io
import json
import math
import os
import platform
import pstats
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchlib import DEMO_PASSWORD, HOST, ROOT, Databases, bangban_cmd, free_port  # noqa: E402

from engine.clock import service_today  # noqa: E402
from engine.demo import SAMPLE_APPLICATION  # noqa: E402

BENCH = ROOT / "bench"
MINIMAL_DIR = BENCH / "minimal"
FULL_DIR = ROOT / "processes"
FAST_HASH = "pbkdf2:sha256:1000"  # in-process databases only; the servers use `bangban demo` (scrypt)
TARGET_A_MS = 15.0

# ---- the data driven through the processes (without a 补正 round) ----

MINIMAL_PROCESS = "minimal"
FULL_PROCESS = "bangban_case"


def minimal_start(i: int) -> dict:
    return {"title": f"基准测试办件 {i}", "note": "由 bench/bench.py 提交"}


def minimal_step(n: int) -> dict:
    return {f"step{n}_done": True, f"step{n}_opinion": f"第{n}步办理完毕"}


MINIMAL_STEPS = [("agent1", name, minimal_step(n)) for n, name in ((1, "受理"), (2, "办理"), (3, "办结"))]

APPLICATION = SAMPLE_APPLICATION

# (user, task name, form data); the specialists' department is their username's suffix (zb_<dept>).
_TODAY = service_today().isoformat()
"""送达日期 may not lie in the future (deliver.json ``x-date: not_future``): the servers' today."""
FULL_STEPS = [
    ("agent1", "受理审核", {"review_decision": "受理", "authorization_checked": True}),
    ("agent1", "材料交接并签订委托书",
     {"commission_signed": True, "materials_received": "营业执照等", "service_mode_confirmed": "现场服务"}),
    ("agent1", "分派服务事项", {"service_items": ["hp", "xf", "gd"]}),
    ("zb_sthj", "部门办理", {"item_decision": "准予许可", "licence_no": "武环审〔2026〕1号"}),
    ("zb_zjj", "部门办理", {"item_decision": "准予许可", "licence_no": "XF-1"}),
    ("zb_gdgs", "部门办理", {"item_decision": "准予许可", "licence_no": "GD-1"}),
    ("agent1", "汇总办理结果", {"results_collected": True}),
    ("agent1", "统一送达", {"delivery_method": "邮寄", "tracking_no": "SF123456789", "delivery_date": _TODAY,
                        "work_record": "全程代办完成", "filed": True}),
    ("huarui", "签收办结单", {"results_received": True}),
    ("huarui", "评价代办服务", {"rating": "非常满意"}),
    ("window1", "评价部门业务专办窗口", {"rating": "满意"}),
    ("window1", "评价部门业务专办窗口", {"rating": "满意"}),
    ("window1", "评价部门业务专办窗口", {"rating": "满意"}),
]
FULL_USERS = sorted({"huarui"} | {u for u, _, _ in FULL_STEPS})


class BenchError(RuntimeError):
    pass


def dept_of(username: str) -> str | None:
    return username[3:] if username.startswith("zb_") else None


# ---- statistics -----------------------------------------------------------------------------------------------

def summarize(samples_s: list[float]) -> dict:
    ms = sorted(s * 1000.0 for s in samples_s)
    n = len(ms)
    return {"n": n, "median_ms": statistics.median(ms), "p90_ms": ms[max(0, math.ceil(0.9 * n) - 1)],
            "min_ms": ms[0], "mean_ms": statistics.fmean(ms), "max_ms": ms[-1]}


# ---- databases ------------------------------------------------------------------------------------------------

# ---- the server subprocess ------------------------------------------------------------------------------------

_servers: list["Server"] = []


class Server:
    """``bangban demo`` then ``bangban serve`` on 127.0.0.1:<free port>, with its own env; stopped at exit."""

    def __init__(self, name: str, database_url: str, process_dir: Path, log_dir: Path, threads: int):
        self.name, self.threads = name, threads
        self.env = dict(os.environ, DATABASE_URL=database_url, BANGBAN_PROCESS_DIR=str(process_dir),
                        BANGBAN_SECRET_KEY=uuid.uuid4().hex, PYTHONUNBUFFERED="1")
        self.log_path = log_dir / f"server_{name}.log"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    def start(self) -> "Server":
        with open(self.log_path, "ab") as log:
            demo = subprocess.run(bangban_cmd() + ["demo"], env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log, timeout=300)
        if demo.returncode != 0:
            raise BenchError(f"`bangban demo` failed for {self.name} (exit {demo.returncode}):\n{self.log_tail()}")
        self.port = free_port()
        log = open(self.log_path, "ab")
        _servers.append(self)
        self.proc = subprocess.Popen(
            bangban_cmd() + ["serve", "--host", HOST, "--port", str(self.port), "--threads", str(self.threads)],
            env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"server {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/api/me")
                status = conn.getresponse().status
                conn.close()
                if status in (200, 401):
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"server {self.name} did not answer on {HOST}:{self.port} within 60 s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # our own child, by its pid
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def stop_servers() -> None:
    while _servers:
        _servers.pop().stop()


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


# ---- API drivers: one interface, three transports -------------------------------------------------------------

class Recorder:
    """Per-request latencies, keyed by request type ("POST /api/cases", ...)."""

    def __init__(self):
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.enabled = False

    def add(self, kind: str, seconds: float) -> None:
        if self.enabled:
            self.samples[kind].append(seconds)


class HttpSession:
    """One user's keep-alive connection with its session cookie (http.client, no extra client library)."""

    def __init__(self, port: int, recorder: Recorder):
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)
        self.cookie: str | None = None
        self.recorder = recorder
        self.connects = 0

    def call(self, method: str, path: str, kind: str, body: dict | None = None):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.cookie:
            headers["Cookie"] = self.cookie
        t0 = time.perf_counter()
        if self.conn.sock is None:
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connects += 1
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        self.recorder.add(kind, time.perf_counter() - t0)
        for cookie in resp.headers.get_all("Set-Cookie") or []:
            pair = cookie.split(";", 1)[0].strip()
            if pair.startswith("session="):
                self.cookie = pair if pair != "session=" else None
        payload = json.loads(raw) if raw else None
        if resp.status >= 400:
            raise BenchError(f"{method} {path} -> {resp.status}: {payload}")
        return payload

    def close(self) -> None:
        self.conn.close()


class HttpApi:
    """The JSON API over real HTTP, one logged-in session per user."""

    def __init__(self, port: int):
        self.port = port
        self.recorder = Recorder()
        self.sessions: dict[str, HttpSession] = {}

    def login(self, username: str) -> dict:
        s = HttpSession(self.port, self.recorder)
        me = s.call("POST", "/api/login", "POST /api/login", {"username": username, "password": DEMO_PASSWORD})
        self.sessions[username] = s
        return me

    def start_form(self, user: str, process_id: str) -> dict:
        return self.sessions[user].call("GET", f"/api/processes/{process_id}/start-form",
                                        "GET /api/processes/<id>/start-form")

    def start(self, user: str, process_id: str, data: dict, unit_id: int | None) -> str:
        body = {"process": process_id, "data": data}
        if unit_id is not None:
            body["unit_id"] = unit_id
        return self.sessions[user].call("POST", "/api/cases", "POST /api/cases", body)["case_no"]

    def inbox(self, user: str) -> list[dict]:
        return self.sessions[user].call("GET", "/api/tasks", "GET /api/tasks")["tasks"]

    def complete(self, user: str, task_id: str, data: dict) -> dict:
        return self.sessions[user].call("POST", f"/api/tasks/{task_id}/complete", "POST /api/tasks/<id>/complete", data)

    def case(self, user: str, case_no: str) -> dict:
        return self.sessions[user].call("GET", f"/api/cases/{case_no}", "GET /api/cases/<no>")

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()

    @property
    def connects(self) -> int:
        return sum(s.connects for s in self.sessions.values())


class FlaskApi(HttpApi):
    """The same JSON API through the Flask test client (in-process: no socket, no waitress)."""

    def __init__(self, app):
        self.app = app
        self.recorder = Recorder()
        self.clients: dict = {}
        self.on_request: Callable[[str], None] | None = None  # set by the statement counter

    def _call(self, user_client, method: str, path: str, kind: str, body: dict | None = None):
        if self.on_request:
            self.on_request(kind)
        t0 = time.perf_counter()
        resp = user_client.open(path, method=method, json=body)
        payload = resp.get_json(silent=True)
        self.recorder.add(kind, time.perf_counter() - t0)
        if resp.status_code >= 400:
            raise BenchError(f"{method} {path} -> {resp.status_code}: {payload}")
        return payload

    def login(self, username: str) -> dict:
        c = self.app.test_client()
        me = self._call(c, "POST", "/api/login", "POST /api/login", {"username": username, "password": DEMO_PASSWORD})
        self.clients[username] = c
        return me

    def start_form(self, user, process_id):
        return self._call(self.clients[user], "GET", f"/api/processes/{process_id}/start-form",
                          "GET /api/processes/<id>/start-form")

    def start(self, user, process_id, data, unit_id):
        body = {"process": process_id, "data": data}
        if unit_id is not None:
            body["unit_id"] = unit_id
        return self._call(self.clients[user], "POST", "/api/cases", "POST /api/cases", body)["case_no"]

    def inbox(self, user):
        return self._call(self.clients[user], "GET", "/api/tasks", "GET /api/tasks")["tasks"]

    def complete(self, user, task_id, data):
        return self._call(self.clients[user], "POST", f"/api/tasks/{task_id}/complete",
                          "POST /api/tasks/<id>/complete", data)

    def case(self, user, case_no):
        return self._call(self.clients[user], "GET", f"/api/cases/{case_no}", "GET /api/cases/<no>")

    def close(self) -> None:
        pass


class ServiceApi:
    """The engine use cases (engine.services.Bangban) called directly; actors resolved once (like a login)."""

    def __init__(self, svc):
        self.svc = svc
        self.actors: dict = {}
        self.recorder = Recorder()

    def login(self, username: str) -> dict:
        from engine.access import Actor
        with self.svc.db.unit_of_work(write=False) as uow:
            row = uow.repo.user_by_username(username)
        if row is None:
            raise BenchError(f"no user {username}")
        self.actors[username] = Actor.from_row(row)
        return {"username": username}

    def _timed(self, kind, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self.recorder.add(kind, time.perf_counter() - t0)
        return out

    def start_form(self, user, process_id):
        return self._timed("start_form", self.svc.start_form, self.actors[user], process_id)

    def start(self, user, process_id, data, unit_id):
        return self._timed("start_case", lambda: self.svc.start_case(self.actors[user], process_id, data,
                                                                     unit_id=unit_id)).case_no

    def inbox(self, user):
        return self._timed("inbox", self.svc.inbox, self.actors[user])

    def complete(self, user, task_id, data):
        return self._timed("complete_task", self.svc.complete_task, self.actors[user], task_id, data)

    def case(self, user, case_no):
        return self._timed("get_case", self.svc.get_case, self.actors[user], case_no)

    def close(self) -> None:
        pass


# ---- the two scenarios, for any transport ---------------------------------------------------------------------

def _pick(inbox: list[dict], case_no: str, name: str, department: str | None = None) -> dict:
    for t in inbox:
        if t["case_no"] == case_no and t["name"] == name and (department is None or t["department"] == department):
            return t
    raise BenchError(f"no ready task 「{name}」 of case {case_no} in inbox: {[(t['case_no'], t['name']) for t in inbox]}")


def _status(view: dict) -> str:
    return view["case"]["status"]


def run_minimal(api, unit_id: int, i: int) -> float:
    t0 = time.perf_counter()
    case_no = api.start("agent1", MINIMAL_PROCESS, minimal_start(i), unit_id)
    for user, name, data in MINIMAL_STEPS:
        task = _pick(api.inbox(user), case_no, name)
        api.complete(user, task["task_id"], data)
    view = api.case("agent1", case_no)
    elapsed = time.perf_counter() - t0
    if _status(view) != "completed":
        raise BenchError(f"minimal case {case_no} ended {_status(view)}")
    return elapsed


def run_full(api, i: int) -> float:
    t0 = time.perf_counter()
    case_no = api.start("huarui", FULL_PROCESS, dict(APPLICATION, project_name=f"年产万吨食品项目{i}"), None)
    for user, name, data in FULL_STEPS:
        task = _pick(api.inbox(user), case_no, name, dept_of(user))
        api.complete(user, task["task_id"], data)
    view = api.case("agent1", case_no)
    elapsed = time.perf_counter() - t0
    if _status(view) != "completed":
        raise BenchError(f"full case {case_no} ended {_status(view)}")
    return elapsed


def measure(label: str, fn: Callable[[int], float], runs: int, warmup: int, recorder: Recorder | None = None) -> dict:
    for i in range(warmup):
        fn(-1 - i)
    if recorder is not None:
        recorder.samples.clear()
        recorder.enabled = True
    samples = [fn(i) for i in range(runs)]
    if recorder is not None:
        recorder.enabled = False
    out = summarize(samples)
    if recorder is not None:
        out["per_request"] = {k: summarize(v) for k, v in sorted(recorder.samples.items())}
    print(f"  {label:<58} median {out['median_ms']:8.2f} ms   p90 {out['p90_ms']:8.2f}   min {out['min_ms']:8.2f}",
          flush=True)
    return out


# ---- (c) the floor: SpiffWorkflow in memory -------------------------------------------------------------------

def _validated(ps, form_name: str, data: dict) -> dict:
    """The data the service would pass to the workflow (validated, every declared field present)."""
    from engine import forms

    def options(source: str) -> list[dict]:
        return ps.catalogue.options() if source == "catalogue_items" else []
    return forms.validate(forms.resolve(ps.form(form_name), options), data)


def prepare_floor(ps, process_id: str, start_data: dict, steps: list[tuple[str, str, dict]]):
    """Validated form data for the start and each step (prepared once, outside the timing)."""
    from engine.runtime import CaseRun
    start = _validated(ps, ps.process(process_id)["start_form"], start_data)
    run = CaseRun.start(ps, process_id, start)
    prepared = []
    for user, name, data in steps:
        task = _floor_pick(run, name, dept_of(user))
        d = _validated(ps, task.form, data)
        prepared.append((user, name, d))
        run.complete(task, user, d)
    if run.status() != "completed":
        raise BenchError(f"{process_id}: the floor run ended {run.status()}")
    return start, prepared


def _floor_pick(run, name: str, department: str | None):
    for t in run.ready_tasks():
        if t.name == name and (department is None or t.department == department):
            return t
    raise BenchError(f"floor: no ready task 「{name}」 ({[t.name for t in run.ready_tasks()]})")


def _timed_build(directory: Path) -> float:
    """engine.processes.build of a process set (once per process version in the service; not in the floors)."""
    from engine import processes
    files = processes.read_dir(directory)
    t0 = time.perf_counter()
    processes.build(files)
    return time.perf_counter() - t0


def run_floor(ps, process_id: str, start: dict, prepared, serialize: bool) -> float:
    """start / ready_tasks / complete; with ``serialize`` also the service's per-request state round trips:
    dump after start, load + complete + ready_tasks + dump per task, load for the final case view."""
    from engine.runtime import CaseRun
    t0 = time.perf_counter()
    run = CaseRun.start(ps, process_id, start)
    run.ready_tasks()
    if serialize:
        state, case_vars = run.dump(), run.case_vars
    for user, name, data in prepared:
        if serialize:
            run = CaseRun.load(ps, process_id, state, case_vars)
        task = _floor_pick(run, name, dept_of(user))
        run.complete(task, user, data)
        run.status()
        run.ready_tasks()
        if serialize:
            state, case_vars = run.dump(), run.case_vars
    if serialize:
        run = CaseRun.load(ps, process_id, state, case_vars)
        run.completed_elements()
    status = run.status()
    elapsed = time.perf_counter() - t0
    if status != "completed":
        raise BenchError(f"floor run ended {status}")
    return elapsed


# ---- in-process set-up, statement counting, profiling ---------------------------------------------------------

def inprocess_service(database_url: str, process_dir: Path):
    from engine import processes
    from engine.db import Database
    from engine.demo import load_demo
    from engine.migrate import upgrade
    from engine.services import Bangban
    db = Database(database_url)
    upgrade(db.url)
    svc = Bangban.open(db, processes.read_dir(process_dir))
    load_demo(db, svc.current.catalogue, hash_method=FAST_HASH)
    return svc


def flask_app(svc):
    from web import create_app
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": uuid.uuid4().hex})


class StatementCounter:
    """Counts SQL statements (and their time) per request type with ``before/after_cursor_execute``."""

    def __init__(self, engine):
        from sqlalchemy import event
        self.engine, self.event = engine, event
        self.current: str | None = None
        self.per_request: dict[str, list[dict]] = defaultdict(list)
        self.samples: dict[str, list[str]] = {}
        self._t0 = 0.0
        self._lock = threading.Lock()

    def __enter__(self):
        self.event.listen(self.engine, "before_cursor_execute", self._before)
        self.event.listen(self.engine, "after_cursor_execute", self._after)
        self.event.listen(self.engine, "commit", self._commit)
        self.event.listen(self.engine, "rollback", self._rollback)
        return self

    def __exit__(self, *exc):
        for name, fn in (("before_cursor_execute", self._before), ("after_cursor_execute", self._after),
                         ("commit", self._commit), ("rollback", self._rollback)):
            self.event.remove(self.engine, name, fn)

    def begin_request(self, kind: str) -> None:
        self.current = kind
        self.per_request[kind].append({"statements": 0, "begins": 0, "sql_s": 0.0, "commits": 0, "rollbacks": 0,
                                       "texts": []})

    def _rec(self):
        return self.per_request[self.current][-1] if self.current else None

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self._t0 = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        rec = self._rec()
        if rec is not None:
            rec["statements"] += 1
            if statement.lstrip().upper().startswith("BEGIN"):
                rec["begins"] += 1
            rec["sql_s"] += time.perf_counter() - self._t0
            rec["texts"].append(" ".join(statement.split())[:160] + (" [executemany]" if executemany else ""))

    def _commit(self, conn):
        rec = self._rec()
        if rec is not None:
            rec["commits"] += 1

    def _rollback(self, conn):
        rec = self._rec()
        if rec is not None:
            rec["rollbacks"] += 1

    def report(self) -> dict:
        out = {}
        for kind, recs in self.per_request.items():
            counts = [r["statements"] for r in recs]
            queries = [r["statements"] - r["begins"] for r in recs]
            out[kind] = {"requests": len(recs), "statements_min": min(counts), "statements_max": max(counts),
                         "statements_mean": statistics.fmean(counts), "queries_min": min(queries),
                         "queries_max": max(queries), "transactions_per_request": statistics.fmean(
                             r["commits"] + r["rollbacks"] for r in recs),
                         "sql_ms_median": statistics.median(r["sql_s"] for r in recs) * 1000.0,
                         "commits_per_request": statistics.fmean(r["commits"] for r in recs),
                         "rollbacks_per_request": statistics.fmean(r["rollbacks"] for r in recs),
                         "example": recs[-1]["texts"]}
        return out


def count_statements(svc, app, unit_id: int, runs: int, full: bool) -> dict:
    api = FlaskApi(app)
    with StatementCounter(svc.db.engine) as counter:
        api.on_request = counter.begin_request
        for user in (FULL_USERS if full else ["agent1"]):
            api.login(user)
        if not full:
            api.start_form("agent1", MINIMAL_PROCESS)
        for i in range(runs):
            if full:
                run_full(api, 10_000 + i)
            else:
                run_minimal(api, unit_id, 10_000 + i)
        counter.current = None
    return counter.report()


def profile_minimal(app, unit_id: int, runs: int, out_txt: Path) -> dict:
    api = FlaskApi(app)
    api.login("agent1")
    for i in range(3):
        run_minimal(api, unit_id, 20_000 + i)
    prof = cProfile.Profile()
    prof.enable()
    for i in range(runs):
        run_minimal(api, unit_id, 30_000 + i)
    prof.disable()
    out_txt.parent.mkdir(parents=True, exist_ok=True)
    prof.dump_stats(str(out_txt.with_suffix(".prof")))
    buf = io.StringIO()
    buf.write(f"cProfile of {runs} runs of (a) in-process (Flask test client, same DB type), "
              f"python {platform.python_version()}\n\n")
    for key, title in (("cumulative", "by cumulative time"), ("tottime", "by total (own) time")):
        buf.write(f"==== top 15 {title} ====\n")
        st = pstats.Stats(prof, stream=buf)
        st.strip_dirs().sort_stats(key).print_stats(15)
    buf.write("==== top 15 by cumulative time, project code only (engine/, web/) ====\n")
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats("cumulative").print_stats(re.escape(str(ROOT)) + r"/(engine|web)/", 15)
    packages = own_time_by_package(prof)
    buf.write("==== own (total) time by package ====\n")
    for name, secs in packages.items():
        buf.write(f"  {name:<28} {secs * 1000 / runs:8.2f} ms/run  {100 * secs / sum(packages.values()):5.1f} %\n")
    out_txt.write_text(buf.getvalue())
    st = pstats.Stats(prof)
    total = st.total_tt
    rows = {}
    for key in ("cumulative", "tottime"):
        st.sort_stats(key)
        rows[key] = [{"function": f"{Path(fn[0]).name}:{fn[1]}({fn[2]})", "ncalls": v[1], "tottime_s": v[2],
                      "cumtime_s": v[3]} for fn, v in ((f, st.stats[f]) for f in st.fcn_list[:15])]
    return {"file": str(out_txt), "profiled_runs": runs, "total_s": total, "top": rows,
            "own_ms_per_run_by_package": {k: v * 1000 / runs for k, v in packages.items()}}


PACKAGES = [("sqlalchemy", "/sqlalchemy/"), ("SpiffWorkflow", "/SpiffWorkflow/"), ("flask", "/flask/"),
            ("werkzeug", "/werkzeug/"), ("itsdangerous", "/itsdangerous/"), ("jsonschema", "/jsonschema"),
            ("engine/ (project)", f"{ROOT}/engine/"), ("web/ (project)", f"{ROOT}/web/"),
            ("bench harness", f"{ROOT}/bench/"),
            ("psycopg", "/psycopg/"),
            ("json (stdlib)", "/json/")]


def own_time_by_package(prof) -> dict[str, float]:
    """Own (tottime) seconds grouped by where the function lives; C functions by their name."""
    st = pstats.Stats(prof)
    out: dict[str, float] = defaultdict(float)
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in st.stats.items():
        name = "other python"
        if filename == "~":
            if "sqlite3" in func:
                name = "sqlite3 (C)"
            elif "psycopg" in func or "pq" in func:
                name = "psycopg (C)"
            else:
                name = "builtins (C)"
        else:
            for label, needle in PACKAGES:
                if needle in filename:
                    name = label
                    break
        out[name] += tt
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


# ---- the benchmark ----------------------------------------------------------------------------------------------

def fmt_row(label: str, s: dict | None) -> str:
    if not s:
        return f"{label:<62} {'-':>6} {'-':>9} {'-':>9} {'-':>9}"
    return f"{label:<62} {s['n']:>6} {s['median_ms']:>9.2f} {s['p90_ms']:>9.2f} {s['min_ms']:>9.2f}"


def _git_version() -> str | None:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30, help="measured runs per figure (at least 20; default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured runs before each figure (default 3)")
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--json", metavar="OUT", help="write all figures as JSON to this file")
    ap.add_argument("--threads", type=int, default=4, help="waitress threads of the servers (default 4)")
    ap.add_argument("--profile-out", default=str(BENCH / "results" / "profile_minimal.txt"),
                    help="where the cProfile report of (a) goes (default bench/results/profile_minimal.txt)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (databases, server logs)")
    args = ap.parse_args(argv)
    if args.runs < 20:
        ap.error("--runs must be at least 20")

    signal.signal(signal.SIGTERM, _on_signal)
    atexit.register(stop_servers)
    tmp = Path(tempfile.mkdtemp(prefix="bangban_bench_"))
    dbs = Databases(args.db, tmp)
    results: dict = {"loadavg_start": os.getloadavg(), "git": _git_version(),
                     "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                     "db": args.db, "runs": args.runs, "warmup": args.warmup, "threads": args.threads,
                     "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                     "target_a_median_ms": TARGET_A_MS, "figures": {}}
    fig = results["figures"]
    try:
        from engine import processes
        ps_min = processes.load(processes.read_dir(MINIMAL_DIR))
        ps_full = processes.load(processes.read_dir(FULL_DIR))

        print(f"bangban benchmark: db={args.db}, {args.runs} runs (+{args.warmup} warm-up) per figure, "
              f"code {results['git']}, {results['when']}, tmp={tmp}")
        results["build_ms"] = {name: summarize([_timed_build(d) for _ in range(5)])["median_ms"]
                               for name, d in (("minimal", MINIMAL_DIR), ("full", FULL_DIR))}

        # (c) / (cs): SpiffWorkflow alone
        print("floor (SpiffWorkflow in memory):")
        m_start, m_prep = prepare_floor(ps_min, MINIMAL_PROCESS, minimal_start(0), MINIMAL_STEPS)
        f_start, f_prep = prepare_floor(ps_full, FULL_PROCESS, APPLICATION, FULL_STEPS)
        fig["c_minimal"] = measure("(c)  minimal: CaseRun start/ready_tasks/complete",
                                   lambda i: run_floor(ps_min, MINIMAL_PROCESS, m_start, m_prep, False),
                                   args.runs, args.warmup)
        fig["cs_minimal"] = measure("(cs) minimal: (c) + state load/dump per request",
                                    lambda i: run_floor(ps_min, MINIMAL_PROCESS, m_start, m_prep, True),
                                    args.runs, args.warmup)
        fig["c_full"] = measure("(c)  full: CaseRun start/ready_tasks/complete",
                                lambda i: run_floor(ps_full, FULL_PROCESS, f_start, f_prep, False),
                                args.runs, args.warmup)
        fig["cs_full"] = measure("(cs) full: (c) + state load/dump per request",
                                 lambda i: run_floor(ps_full, FULL_PROCESS, f_start, f_prep, True),
                                 args.runs, args.warmup)

        # (c') and (t): in-process, on a fresh database
        print(f"in-process ({args.db}):")
        svc_min = inprocess_service(dbs.new("inproc_minimal"), MINIMAL_DIR)
        unit_id = svc_min.units()[0]["id"]
        sapi = ServiceApi(svc_min)
        sapi.login("agent1")
        fig["c1_minimal"] = measure(f"(c') minimal: engine use cases on {args.db}",
                                    lambda i: run_minimal(sapi, unit_id, i), args.runs, args.warmup, sapi.recorder)
        app_min = flask_app(svc_min)
        fapi = FlaskApi(app_min)
        fapi.login("agent1")
        fig["t_minimal"] = measure(f"(t)  minimal: Flask test client on {args.db}",
                                   lambda i: run_minimal(fapi, unit_id, i), args.runs, args.warmup, fapi.recorder)

        svc_full = inprocess_service(dbs.new("inproc_full"), FULL_DIR)
        sapi_f = ServiceApi(svc_full)
        for u in FULL_USERS:
            sapi_f.login(u)
        fig["c1_full"] = measure(f"(c') full: engine use cases on {args.db}",
                                 lambda i: run_full(sapi_f, i), args.runs, args.warmup, sapi_f.recorder)
        app_full = flask_app(svc_full)
        fapi_f = FlaskApi(app_full)
        for u in FULL_USERS:
            fapi_f.login(u)
        fig["t_full"] = measure(f"(t)  full: Flask test client on {args.db}",
                                lambda i: run_full(fapi_f, i), args.runs, args.warmup, fapi_f.recorder)

        # (a): minimal process over HTTP against `bangban serve`
        print("HTTP (bangban serve / waitress on 127.0.0.1):")
        srv_min = Server("minimal", dbs.new("bench"), MINIMAL_DIR, tmp, args.threads).start()
        api = HttpApi(srv_min.port)
        api.login("agent1")
        units = api.start_form("agent1", MINIMAL_PROCESS)["units"]
        if not units:
            raise BenchError("start form lists no units: did `bangban demo` run?")
        http_unit = units[0]["id"]
        fig["a"] = measure("(a)  minimal over HTTP", lambda i: run_minimal(api, http_unit, i), args.runs,
                           args.warmup, api.recorder)
        fig["a"]["connections_opened"] = api.connects
        api.close()
        srv_min.stop()

        # (b): the full lifecycle over HTTP
        srv_full = Server("full", dbs.new("bench_full"), FULL_DIR, tmp, args.threads).start()
        api_f = HttpApi(srv_full.port)
        for u in FULL_USERS:
            api_f.login(u)
        fig["b"] = measure("(b)  full lifecycle over HTTP", lambda i: run_full(api_f, i), args.runs, args.warmup,
                           api_f.recorder)
        fig["b"]["connections_opened"] = api_f.connects
        api_f.close()
        srv_full.stop()

        # statements per request and the profile (in-process)
        print("statement counts and profile (in-process) ...", flush=True)
        results["statements_minimal"] = count_statements(svc_min, app_min, unit_id, 5, full=False)
        results["statements_full"] = count_statements(svc_full, app_full, None, 2, full=True)
        results["profile_minimal"] = profile_minimal(app_min, unit_id, args.runs, Path(args.profile_out))
        svc_min.db.dispose()
        svc_full.db.dispose()

        results["loadavg_end"] = os.getloadavg()
        report(results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=2, default=str))
            print(f"\nJSON written to {args.json}")
        return 0
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_servers()
        dbs.cleanup()
        if args.keep_tmp:
            print(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report(results: dict) -> None:
    f = results["figures"]
    db = results["db"]
    print("\n" + "=" * 100)
    print(f"{'figure (ms per whole case)':<62} {'runs':>6} {'median':>9} {'p90':>9} {'min':>9}")
    print("-" * 100)
    rows = [
        (f"(a)  minimal, HTTP (bangban serve, {db})", "a"),
        (f"(t)  minimal, Flask test client in-process ({db})", "t_minimal"),
        (f"(c') minimal, engine use cases, no HTTP ({db})", "c1_minimal"),
        ("(cs) minimal, SpiffWorkflow + state load/dump, in memory", "cs_minimal"),
        ("(c)  minimal, SpiffWorkflow only, in memory (floor)", "c_minimal"),
        (f"(b)  full lifecycle, HTTP (bangban serve, {db})", "b"),
        (f"(t)  full lifecycle, Flask test client in-process ({db})", "t_full"),
        (f"(c') full lifecycle, engine use cases, no HTTP ({db})", "c1_full"),
        ("(cs) full lifecycle, SpiffWorkflow + state load/dump, in memory", "cs_full"),
        ("(c)  full lifecycle, SpiffWorkflow only, in memory (floor)", "c_full"),
    ]
    for label, key in rows:
        print(fmt_row(label, f.get(key)))
    ratios = {
        "a/c_minimal": f["a"]["median_ms"] / f["c_minimal"]["median_ms"],
        "b/c_full": f["b"]["median_ms"] / f["c_full"]["median_ms"],
        "a/c1_minimal": f["a"]["median_ms"] / f["c1_minimal"]["median_ms"],
        "b/c1_full": f["b"]["median_ms"] / f["c1_full"]["median_ms"],
    }
    results["ratios"] = ratios
    print(f"{'(once per process version, not in any figure) processes.build minimal / full':<62} {'':>6}"
          f" {results['build_ms']['minimal']:>9.2f} {results['build_ms']['full']:>9.2f}")
    print("-" * 100)
    print(f"ratios of medians:  (a)/(c minimal) = {ratios['a/c_minimal']:.1f}x   (b)/(c full) = {ratios['b/c_full']:.1f}x"
          f"   (a)/(c' minimal) = {ratios['a/c1_minimal']:.2f}x   (b)/(c' full) = {ratios['b/c1_full']:.2f}x")
    a = f["a"]["median_ms"]
    verdict = "MET" if a <= TARGET_A_MS else "NOT MET"
    results["target_met"] = a <= TARGET_A_MS
    print(f"target (a) median <= {TARGET_A_MS:.0f} ms: {verdict} ({a:.2f} ms)")
    print("load average at start / end: " + " / ".join(
        " ".join(f"{x:.2f}" for x in results[k]) for k in ("loadavg_start", "loadavg_end")))

    print(f"\nwhere (a)'s time goes (differences between figures):  {'medians':>9} {'mins':>9}")
    split: dict[str, dict] = {}
    for stat in ("median_ms", "min_ms"):
        parts = {
            "SpiffWorkflow (c)": f["c_minimal"][stat],
            "state load/dump (cs - c)": f["cs_minimal"][stat] - f["c_minimal"][stat],
            "use cases: DB, forms, events, projections (c' - cs)": f["c1_minimal"][stat] - f["cs_minimal"][stat],
            "Flask app + test client: routing, session, actor, JSON (t - c')":
                f["t_minimal"][stat] - f["c1_minimal"][stat],
            "HTTP transport: waitress, sockets, client (a - t)": f["a"][stat] - f["t_minimal"][stat],
        }
        for k, v in parts.items():
            split.setdefault(k, {})[stat] = v
    results["split_a_ms"] = split
    for k, v in split.items():
        print(f"  {k:<64} {v['median_ms']:9.2f} {v['min_ms']:9.2f}")
    noisy = [k for k, v in f.items() if isinstance(v, dict) and v.get("p90_ms", 0) > 1.5 * v.get("median_ms", 1)]
    busy = results["loadavg_start"][0] > 0.5 * (results["cpus"] or 1)
    results["noisy"] = bool(noisy or busy)
    if noisy or busy:
        print(f"  WARNING: the machine looks busy (load {results['loadavg_start'][0]:.2f} on {results['cpus']} CPUs"
              f"{'; p90 > 1.5 x median for ' + ', '.join(noisy) if noisy else ''}): medians and the split are"
              f" disturbed; compare the mins, or rerun when the machine is idle.")

    for key, title in (("a", "(a) per request over HTTP"), ("c1_minimal", "(c') minimal, per use case"),
                       ("b", "(b) per request over HTTP"), ("c1_full", "(c') full, per use case")):
        per = f[key].get("per_request") or {}
        print(f"\n{title}: {'n':>5} {'median':>8} {'p90':>8} {'min':>8}")
        for kind, s in per.items():
            print(f"  {kind:<38} {s['n']:>5} {s['median_ms']:>8.2f} {s['p90_ms']:>8.2f} {s['min_ms']:>8.2f}")

    for key, title in (("statements_minimal", "SQL statements per request, minimal process (in-process, Flask)"),
                       ("statements_full", "SQL statements per request, full lifecycle (in-process, Flask)")):
        print(f"\n{title}:")
        print(f"  {'request':<38} {'n':>4} {'statements':>11} {'w/o BEGIN':>10} {'transactions':>13} {'commits':>8}"
              f" {'dbapi ms':>8}")
        for kind, s in results[key].items():
            def rng(a, b):
                return f"{a}" if a == b else f"{a}-{b}"
            print(f"  {kind:<38} {s['requests']:>4} {rng(s['statements_min'], s['statements_max']):>11}"
                  f" {rng(s['queries_min'], s['queries_max']):>10} {s['transactions_per_request']:>13.1f}"
                  f" {s['commits_per_request']:>8.1f} {s['sql_ms_median']:>8.2f}")
    print("\n  statements of one request each (minimal):")
    for kind, s in results["statements_minimal"].items():
        print(f"  -- {kind}")
        for t in s["example"]:
            print(f"       {t[:110]}")

    prof = results["profile_minimal"]
    print(f"\ncProfile of (a) in-process ({prof['profiled_runs']} runs) -> {prof['file']}")
    print("  own time by package (ms per run, under the profiler):  " + ", ".join(
        f"{k} {v:.2f}" for k, v in prof["own_ms_per_run_by_package"].items()))
    for key in ("cumulative", "tottime"):
        print(f"  top 15 by {key}:  {'ncalls':>8} {'tottime s':>10} {'cumtime s':>10}")
        for r in prof["top"][key]:
            print(f"    {r['function'][:70]:<70} {r['ncalls']:>8} {r['tottime_s']:>10.3f} {r['cumtime_s']:>10.3f}")


if __name__ == "__main__":
    sys.exit(main())
