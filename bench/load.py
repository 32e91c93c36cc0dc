#!/usr/bin/env python
"""Load-and-fault harness: whole 帮办代办 cases driven by virtual users over several server processes and a timer worker,
with faults injected, then every invariant of the database checked (see bench/README.md, "Load and faults").

    python bench/load.py --db sqlite --servers 2 --users 10 --duration 20 --kill-server-every 10
    python bench/load.py --db postgres --servers 4 --users 50 --duration 60 --drop-db-connections

Each virtual user drives one case after another through the JSON API, every request to the next server in turn
(a load balancer without sticky sessions): the applicant applies, an agent accepts (or refuses), a chief officer
leads key projects, the departments decide (with 补正 rounds and refusals), the lead collects and delivers, the
applicant signs and everyone rates; some cases are terminated at a random point, by the lead or at the applicant's
request (granted or refused). Inbox reads, case pages and searches are mixed in. Requests cut off by a fault are
retried the way a careful client would (a completion answered 409 "already done" after a lost response counts as done).

At the end: ``bangban audit verify --all`` passes; case and document numbers have no gaps; every completion answered
2xx has its event; no completed task is left in an inbox; no case is active without an open task or a due timer.
Prints throughput, cases finished per minute, p50/p95/p99 per request type and every error by kind; exits 1 when a
check fails. Everything runs on 127.0.0.1; every process started is stopped at the end, also on errors and signals.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchlib import DEMO_PASSWORD, HOST, ROOT, Databases, bangban_cmd, free_port, percentile  # noqa: E402

from engine.clock import service_today  # noqa: E402
from engine.demo import SAMPLE_APPLICATION, UNITS  # noqa: E402

ITEM_CODES = ["qydj", "xmlx", "gh", "hp", "ap", "xf", "sg", "gd", "gs", "tx"]
APPLICANTS = {"huarui": UNITS[0], "jiahe": UNITS[1]}
TRANSPORT_ERRORS = (ConnectionError, http.client.HTTPException, socket.timeout, OSError)
SLIP_REASON = "申请单位申请终止帮办代办服务"


class Abandon(Exception):
    """The virtual user gives up on this case (recorded as an error of its kind)."""


# ---- processes ------------------------------------------------------------------------------------------------------

class Proc:
    """A ``bangban`` subprocess (a server on a fixed port, or the worker) that can be killed and restarted."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path, port: int | None = None):
        self.name, self.args, self.env, self.port = name, args, env, port
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.kills = 0

    def start(self, wait: bool = True) -> Proc:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(bangban_cmd() + self.args, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        if wait and self.port:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
                try:
                    with socket.create_connection((HOST, self.port), timeout=1):
                        return self
                except OSError:
                    time.sleep(0.05)
            raise RuntimeError(f"{self.name} did not listen on {self.port} within 60 s:\n{self.tail()}")
        return self

    cpu_seconds = 0.0   # user + system CPU of the processes this one has run (added when each ends)

    def _account(self) -> None:
        """Add the CPU time of the running process (read from /proc before it goes)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            self.cpu_seconds += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError, AttributeError):
            pass

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._account()
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._account()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# ---- recording ------------------------------------------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter = Counter()
        self.completed_tasks: set[str] = set()     # task ids answered 2xx (or 409 after a lost 2xx)
        self.answered_2xx: set[str] = set()        # task ids answered 2xx: each must have its event
        self.finished: Counter = Counter()         # cases seen reaching a final status
        self.started_cases = 0
        self.requests = 0

    def request(self, kind: str, seconds: float, status: int) -> None:
        with self.lock:
            self.requests += 1
            self.latency[kind].append(seconds)
            if status >= 400:
                self.errors[f"HTTP {status} {kind}"] += 1

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] += 1


# ---- a virtual user -------------------------------------------------------------------------------------------------

class Transport(Exception):
    """The request got no answer (server killed, connection reset or refused, timeout)."""


class VirtualUser:
    def __init__(self, n: int, servers: list[str], stats: Stats, stop: threading.Event, rng: random.Random):
        self.n, self.servers, self.stats, self.stop, self.rng = n, servers, stats, stop, rng
        self.turn = n
        self.conns: dict[str, http.client.HTTPConnection] = {}
        self.cookies: dict[str, str] = {}

    # ---- HTTP
    def call(self, user: str, method: str, path: str, kind: str, body: dict | None = None) -> tuple[int, dict]:
        if user not in self.cookies and kind != "POST /api/login":
            self.login(user)
        base = self.servers[self.turn % len(self.servers)]
        self.turn += 1
        headers = {"Accept": "application/json"}
        if user in self.cookies:
            headers["Cookie"] = self.cookies[user]
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        try:
            conn = self.conns.get(base)
            if conn is None:
                host, port = base.rsplit(":", 1)
                conn = self.conns[base] = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except TRANSPORT_ERRORS as exc:
            self.conns.pop(base, None)
            try:
                conn.close()
            except Exception:
                pass
            name = type(exc).__name__
            self.stats.error(f"no answer ({name}) {kind}")
            raise Transport(name) from None
        self.stats.request(kind, time.perf_counter() - t0, response.status)
        for cookie in response.headers.get_all("Set-Cookie") or []:
            pair = cookie.split(";", 1)[0].strip()
            if pair.startswith("session=") and pair != "session=":
                self.cookies[user] = pair
        if response.status == 401 and kind != "POST /api/login":
            self.cookies.pop(user, None)
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"raw": raw[:200].decode("utf-8", "replace")}
        return response.status, payload

    def login(self, user: str) -> None:
        for _ in range(20):
            try:
                status, _ = self.call(user, "POST", "/api/login", "POST /api/login",
                                      {"username": user, "password": DEMO_PASSWORD})
            except Transport:
                time.sleep(0.2)
                continue
            if status == 200:
                return
            time.sleep(0.2)
        raise Abandon("login failed")

    def retrying(self, user: str, method: str, path: str, kind: str, body: dict | None = None) -> tuple[int, dict]:
        """A read, or a write that is safe to repeat: retried on no answer or 503."""
        for _ in range(30):
            try:
                status, payload = self.call(user, method, path, kind, body)
            except Transport:
                time.sleep(0.2)
                continue
            if status == 503:
                time.sleep(0.5)
                continue
            if status == 401:
                continue
            return status, payload
        raise Abandon(f"{kind}: no answer after 30 tries")

    # ---- the case
    def view(self, user: str, no: str) -> dict:
        status, payload = self.retrying(user, "GET", f"/api/cases/{no}", "GET /api/cases/<no>")
        if status != 200:
            raise Abandon(f"case page {status}")
        return payload

    def do(self, user: str, no: str, name: str, form: dict, title: str | None = None) -> None:
        """Complete ``user``'s open task ``name`` (``title``) of case ``no``, surviving lost answers."""
        lost = False
        for _ in range(30):
            if self.stop.is_set() and not lost:
                raise Abandon("stopping")
            mine = [t for t in self.view(user, no)["open_tasks"]
                    if t["name"] == name and (title is None or t["title"] == title) and t["mine"]]
            if not mine:
                if lost:    # the answer was lost but the step was taken
                    return
                self.stats.error(f"task not open: {name}")
                raise Abandon(f"{name} not open")
            task_id = mine[0]["task_id"]
            if self.rng.random() < 0.3:
                self.retrying(user, "GET", "/api/tasks", "GET /api/tasks")
            if self.rng.random() < 0.2:
                self.retrying(user, "GET", f"/api/tasks/{task_id}", "GET /api/tasks/<id>")
            try:
                status, payload = self.call(user, "POST", f"/api/tasks/{task_id}/complete", "POST complete", form)
            except Transport:
                lost = True
                time.sleep(0.2)
                continue
            if status == 200:
                with self.stats.lock:
                    self.stats.completed_tasks.add(task_id)
                    self.stats.answered_2xx.add(task_id)
                return
            if status == 409 and lost:
                with self.stats.lock:
                    self.stats.completed_tasks.add(task_id)
                return
            if status in (503, 401):
                time.sleep(0.3)
                continue
            raise Abandon(f"{name}: HTTP {status} {payload.get('message', '')}")
        raise Abandon(f"{name}: gave up")

    def message(self, user: str, no: str, key: str, form: dict) -> None:
        status, payload = self.retrying(user, "POST", f"/api/cases/{no}/messages/{key}", "POST message", form)
        if status != 200:   # after a lost answer the message may have arrived: the case page tells
            raise Abandon(f"message {key}: HTTP {status} {payload.get('message', '')}")

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.one_case()
            except Abandon as exc:
                if str(exc) != "stopping":
                    self.stats.error(f"case abandoned: {str(exc)[:60]}")
            except Exception as exc:  # a harness bug must not stop the others; count it
                self.stats.error(f"harness error: {type(exc).__name__}: {str(exc)[:80]}")

    def one_case(self) -> None:
        r = self.rng
        applicant = r.choice(list(APPLICANTS))
        unit = APPLICANTS[applicant]
        key_project = r.random() < 0.25
        items = r.sample(ITEM_CODES, r.randint(1, 3))
        data = dict(SAMPLE_APPLICATION, unit_name=unit["name"], unit_address=unit["address"],
                    leader_name=unit["leader_name"], project_name=f"负载测试项目{self.n}-{r.randint(1, 10**6)}",
                    key_project="重点项目" if key_project else "否", service_items=items)
        try:
            status, payload = self.call(applicant, "POST", "/api/cases", "POST /api/cases", {"data": data})
        except Transport:
            return   # not retried: a second application would be a second case
        if status != 201:
            raise Abandon(f"apply: HTTP {status}")
        no = payload["case_no"]
        with self.stats.lock:
            self.stats.started_cases += 1
        if r.random() < 0.2:
            self.retrying(r.choice(["agent1", "supervisor1"]), "GET", f"/api/cases?q={no[-4:]}", "GET /api/cases?q=")
        agent = r.choice(["agent1", "agent2"])
        if r.random() < 0.05:
            self.do(agent, no, "受理审核", {"review_decision": "不予受理", "refusal_explanation": "不属于帮办代办服务事项"})
            return self.finish(applicant, no)
        self.do(agent, no, "受理审核", {"review_decision": "受理", "authorization_checked": True})
        if key_project:
            lead = r.choice(["chief1", "chief2"])
            self.do("window1", no, "指派项目首席服务员",
                    {"chief_officer": lead, "designated_by": "县发展和改革委员会（重点项目）"})
            self.do(lead, no, "签订代办委托协议", {"agreement_signed": True, "materials_received": "全部材料",
                                               "service_mode_confirmed": "上门服务"})
        else:
            lead = agent
            self.do(lead, no, "材料交接并签订委托书", {"commission_signed": True, "materials_received": "全部材料",
                                                 "service_mode_confirmed": "现场服务"})
        stop_at = r.choices([None, "joint", "delivery"], [0.85, 0.1, 0.05])[0]
        self.do(lead, no, "分派服务事项", {"service_items": items})
        names = {i["code"]: (i["name"], i["department"]) for i in self.view(lead, no)["items"]}
        order = items[:]
        r.shuffle(order)
        for i, code in enumerate(order):
            name, dept = names[code]
            if stop_at == "joint" and i == len(order) // 2:
                return self.terminate(applicant, lead, no)
            if r.random() < 0.2:
                self.do(f"zb_{dept}", no, "部门办理", {"item_decision": "需要补正", "correction_request": "补充材料",
                                                                 "correction_due": service_today(30).isoformat()}, name)
                self.do(applicant, no, "补正材料", {"supplement_description": "已补交", "supplement_complete": True}, name)
            decision = {"item_decision": "不予许可", "refusal_reason": "不符合条件"} if r.random() < 0.1 else \
                {"item_decision": "准予许可", "licence_no": f"{code.upper()}-{r.randint(1, 99999)}"}
            self.do(f"zb_{dept}", no, "部门办理", decision, name)
        self.do(lead, no, "汇总办理结果", {"results_collected": True})
        if stop_at == "delivery":
            return self.terminate(applicant, lead, no)
        self.do(lead, no, "统一送达", {"delivery_method": "现场转交", "delivery_date": time.strftime("%Y-%m-%d"),
                                    "work_record": "负载测试送达", "filed": True})
        self.do(applicant, no, "签收办结单", {"results_received": True})
        self.do(applicant, no, "评价代办服务", {"rating": r.choice(["非常满意", "满意", "不满意"])})
        if key_project:
            self.do(lead, no, "评价帮办代办综合窗口", {"rating": "满意"})
        for title in sorted({t["title"] for t in self.view("window1", no)["open_tasks"]
                             if t["name"] == "评价部门业务专办窗口" and t["mine"]}):
            self.do("window1", no, "评价部门业务专办窗口", {"rating": "满意"}, title)
        self.finish(applicant, no)

    def terminate(self, applicant: str, lead: str, no: str) -> None:
        if self.rng.random() < 0.5:
            self.message(applicant, no, "termination_request", {"reason": SLIP_REASON, "remark": "负载测试"})
            if self.rng.random() < 0.3:   # refused: the case carries on, the harness leaves it open
                self.do(lead, no, "审核终止申请", {"termination_decision": "不同意终止", "termination_opinion": "继续"})
                return
            self.do(lead, no, "审核终止申请", {"termination_decision": "同意终止", "termination_opinion": "同意"})
        else:
            self.message(lead, no, "termination", {"reason": "国家法律法规规章和政策发生调整", "remark": "负载测试"})
        self.do(lead, no, "办理终止手续", {"termination_reason": SLIP_REASON, "termination_date": time.strftime("%Y-%m-%d"),
                                        "materials_returned": "原件已退还", "both_signed": True})
        self.finish(applicant, no)

    def finish(self, applicant: str, no: str) -> None:
        status = self.view(applicant, no)["case"]["status"]
        with self.stats.lock:
            self.stats.finished[status] += 1
        if status == "active":
            self.stats.error("case still active after its last step")


# ---- faults ---------------------------------------------------------------------------------------------------------

def kill_servers(servers: list[Proc], every: float, stop: threading.Event, rng: random.Random, log: list) -> None:
    while not stop.wait(every):
        victim = rng.choice(servers)
        victim.kill9()
        log.append((time.monotonic(), f"kill -9 {victim.name}"))
        victim.start()   # restarted at once, as a supervisor (systemd Restart=always) would


def kill_worker(worker: Proc, at: float, stop: threading.Event, log: list) -> None:
    if stop.wait(at):
        return
    worker.kill9()
    log.append((time.monotonic(), "kill -9 worker"))
    if not stop.wait(2):
        worker.start(wait=False)


def drop_db_connections(database_url: str, app_name: str, at: float, seconds: float, stop: threading.Event,
                        log: list) -> None:
    """PostgreSQL: terminate every connection of the service for ``seconds``. SQLite: hold its write lock as long."""
    if stop.wait(at):
        return
    from sqlalchemy import create_engine, text

    from engine.db import normalize_url
    log.append((time.monotonic(), f"database away for {seconds:.0f} s"))
    if database_url.startswith("sqlite"):
        import sqlite3
        conn = sqlite3.connect(database_url.split("///", 1)[1], timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            stop.wait(seconds)
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        return
    engine = create_engine(normalize_url(database_url.split("?")[0]), isolation_level="AUTOCOMMIT")
    end = time.monotonic() + seconds
    killed = 0
    with engine.connect() as c:
        while time.monotonic() < end and not stop.is_set():
            killed += c.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                     "WHERE application_name = :a AND pid <> pg_backend_pid()"), {"a": app_name}).scalar()
            time.sleep(0.1)
    engine.dispose()
    log.append((time.monotonic(), f"{killed} database connections terminated"))


def slow_clients(port: int, count: int, stop: threading.Event) -> None:
    """``count`` connections that send their request one byte every few seconds (slowloris)."""
    socks = []
    for _ in range(count):
        try:
            s = socket.create_connection((HOST, port), timeout=5)
            s.sendall(b"GET /api/me HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            break
    while not stop.wait(5):
        for s in list(socks):
            try:
                s.sendall(b"X")
            except OSError:
                socks.remove(s)
    for s in socks:
        s.close()


# ---- the checks -----------------------------------------------------------------------------------------------------

def check_database(database_url: str, stats: Stats, env: dict) -> list[tuple[str, bool, str]]:
    from sqlalchemy import create_engine, text

    from engine.db import normalize_url
    results: list[tuple[str, bool, str]] = []
    verify = subprocess.run(bangban_cmd() + ["audit", "verify", "--all"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=3600)
    summary = (verify.stdout.strip().splitlines() or ["(no output)"])[-1]
    failed = [line for line in verify.stdout.splitlines() if line.startswith("不通过")]
    results.append(("audit verify --all", verify.returncode == 0, summary + ("; " + "; ".join(failed[:5]) if failed else "")))

    engine = create_engine(normalize_url(database_url))
    with engine.connect() as c:
        counters = c.execute(text("SELECT kind, period, value FROM counters WHERE kind <> 'calendar'")).all()
        case_nos = [r[0] for r in c.execute(text("SELECT case_no FROM cases"))]
        docs = c.execute(text("SELECT kind, number FROM documents")).all()
        gaps = []
        for kind, period, value in counters:
            if kind == "case":
                seqs = sorted(int(no[-4:]) for no in case_nos if no[6:14] == period)
            else:
                seqs = sorted(int(m.group(1)) for k, n in docs if k == kind and f"〔{period}〕" in n
                              and (m := re.search(r"(\d+)号$", n)))
            if seqs != list(range(1, value + 1)):
                gaps.append(f"{kind} {period}: {len(seqs)} issued, counter {value}")
        results.append(("numbers gapless", not gaps, "; ".join(gaps[:5]) or f"{len(counters)} sequences, "
                        f"{len(case_nos)} cases, {len(docs)} documents"))

        done = {r[0] for r in c.execute(text("SELECT task_id FROM events WHERE type = 'task_completed'"))}
        missing = stats.answered_2xx - done
        results.append(("every 2xx completion has its event", not missing,
                        f"{len(stats.answered_2xx)} completions answered 2xx" + (f", {len(missing)} without event"
                                                                                 if missing else "")))
        in_inbox = c.execute(text("SELECT count(*) FROM inbox i WHERE EXISTS (SELECT 1 FROM events e WHERE "
                                  "e.task_id = i.task_id AND e.type = 'task_completed')")).scalar()
        results.append(("no completed task in an inbox", in_inbox == 0, f"{in_inbox} found"))
        stuck = [r[0] for r in c.execute(text(
            "SELECT case_no FROM cases c WHERE status = 'active' AND NOT EXISTS (SELECT 1 FROM inbox i WHERE "
            "i.case_id = c.id) AND NOT EXISTS (SELECT 1 FROM timers t WHERE t.case_id = c.id)"))]
        results.append(("no active case without an open task or a due timer", not stuck,
                        f"{len(stuck)} stuck" + (f": {', '.join(stuck[:5])}" if stuck else "")))
    engine.dispose()
    return results


# ---- main -----------------------------------------------------------------------------------------------------------

def report(args, stats: Stats, elapsed: float, faults: list, checks: list, servers: list[Proc], workers: list[Proc],
           harness_cpu: float) -> dict:
    print(f"\n== bangban load: {args.servers} server process(es) + {args.workers} worker, {args.users} users, "
          f"{args.duration:.0f} s, {args.db_label} ==")
    for _at, what in faults:
        print(f"  fault: {what}")
    finished = sum(stats.finished.values())
    print(f"requests: {stats.requests} in {elapsed:.1f} s = {stats.requests / elapsed:.1f} req/s; cases started "
          f"{stats.started_cases}, finished {finished} ({dict(stats.finished)}) = {finished / elapsed * 60:.1f} per minute")
    cpu = {"servers": sum(p.cpu_seconds for p in servers), "workers": sum(p.cpu_seconds for p in workers),
           "harness": harness_cpu}
    print(f"CPU seconds: servers {cpu['servers']:.1f}, workers {cpu['workers']:.1f}, this harness {cpu['harness']:.1f} "
          f"(of {elapsed * (os.cpu_count() or 1):.0f} available on {os.cpu_count()} CPUs; the database's not counted); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'request':<34}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    table = {}
    for kind in sorted(stats.latency):
        ms = sorted(x * 1000 for x in stats.latency[kind])
        table[kind] = {"n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
                       "max": ms[-1]}
        t = table[kind]
        print(f"{kind:<34}{t['n']:>7}{t['p50']:>10.1f}{t['p95']:>10.1f}{t['p99']:>10.1f}{t['max']:>10.1f}")
    print("errors by kind:" + ("" if stats.errors else " none"))
    for what, n in stats.errors.most_common():
        print(f"  {n:>6}  {what}")
    print("checks:")
    for name, ok, detail in checks:
        print(f"  [{'ok' if ok else 'FAILED'}] {name}: {detail}")
    print("all checks passed" if all(ok for _, ok, _ in checks) else "SOME CHECKS FAILED")
    return {"servers": args.servers, "users": args.users, "duration_s": elapsed, "db": args.db_label,
            "requests": stats.requests, "requests_per_s": stats.requests / elapsed, "cases_started": stats.started_cases,
            "cases_finished": dict(stats.finished), "cases_finished_per_minute": finished / elapsed * 60,
            "latency_ms": table, "errors": dict(stats.errors), "faults": [w for _, w in faults],
            "checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in checks],
            "server_kills": sum(s.kills for s in servers), "cpu_seconds": cpu}


def _terminated(signum, _frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite", help="a fresh database of this kind")
    ap.add_argument("--database-url", help="use this (empty) database instead")
    ap.add_argument("--servers", type=int, default=2, help="bangban serve processes (default 2)")
    ap.add_argument("--workers", type=int, default=1, help="bangban worker processes (default 1)")
    ap.add_argument("--users", type=int, default=10, help="virtual users (default 10)")
    ap.add_argument("--duration", type=float, default=20, help="seconds of load (default 20)")
    ap.add_argument("--min-finished", type=int, default=0, metavar="N",
                    help="go on after --duration until N cases have finished (at most 5 x --duration in all)")
    ap.add_argument("--threads", type=int, default=8, help="waitress threads per server (default 8)")
    ap.add_argument("--kill-server-every", type=float, metavar="S", help="kill -9 a random server every S seconds "
                    "(restarted at once)")
    ap.add_argument("--kill-worker", action="store_true", help="kill -9 the worker at a third of the run (restarted 2 s later)")
    ap.add_argument("--drop-db-connections", action="store_true",
                    help="at half time, drop every database connection for 5 s (SQLite: hold its write lock 5 s)")
    ap.add_argument("--slow-clients", type=int, default=0, metavar="K", help="K slowloris connections to the first server")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (database, logs)")
    args = ap.parse_args(argv)
    if not (1 <= args.servers <= 16 and 1 <= args.users <= 500 and 1 <= args.duration <= 3600 and 0 <= args.workers <= 8
            and 0 <= args.slow_clients <= 2000):
        ap.error("servers 1..16, users 1..500, duration 1..3600 s, workers 0..8, slow clients 0..2000")

    tmp = Path(tempfile.mkdtemp(prefix="bangban-load-"))
    dbs = Databases(args.db, tmp)
    procs: list[Proc] = []
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        url = args.database_url or dbs.new("load")
        app_name = f"bangban-load-{uuid.uuid4().hex[:8]}"
        if not url.startswith("sqlite"):
            url += ("&" if "?" in url else "?") + f"application_name={app_name}"
        args.db_label = "sqlite" if url.startswith("sqlite") else "postgres"
        env = dict(os.environ, DATABASE_URL=url, BANGBAN_SECRET_KEY=uuid.uuid4().hex, PYTHONUNBUFFERED="1",
                   BANGBAN_PROCESS_DIR=str(ROOT / "processes"))
        demo = subprocess.run(bangban_cmd() + ["demo"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if demo.returncode != 0:
            print(demo.stdout + demo.stderr, file=sys.stderr)
            return 2
        servers = [Proc(f"server{i + 1}", ["serve", "--no-worker", "--host", HOST, "--port", str(port), "--threads",
                                           str(args.threads)], env, tmp, port)
                   for i, port in enumerate(free_port() for _ in range(args.servers))]
        workers = [Proc(f"worker{i + 1}", ["worker", "--interval", "1"], env, tmp) for i in range(args.workers)]
        procs += servers + workers
        for p in procs:
            p.start()
        rng = random.Random(args.seed)
        stats = Stats()
        faults: list = []
        fault_threads = []
        if args.kill_server_every:
            fault_threads.append(threading.Thread(target=kill_servers, args=(servers, args.kill_server_every, stop,
                                                                             random.Random(args.seed), faults)))
        if args.kill_worker and workers:
            fault_threads.append(threading.Thread(target=kill_worker, args=(workers[0], args.duration / 3, stop, faults)))
        if args.drop_db_connections:
            fault_threads.append(threading.Thread(target=drop_db_connections,
                                                  args=(url, app_name, args.duration / 2, 5.0, stop, faults)))
        if args.slow_clients:
            fault_threads.append(threading.Thread(target=slow_clients, args=(servers[0].port, args.slow_clients, stop)))
            faults.append((0, f"{args.slow_clients} slow clients on {servers[0].name}"))
        urls = [f"{HOST}:{s.port}" for s in servers]
        users = [threading.Thread(target=VirtualUser(i, urls, stats, stop, random.Random(rng.random())).run,
                                  name=f"vu{i}") for i in range(args.users)]
        started, cpu0 = time.monotonic(), time.process_time()
        for t in fault_threads + users:
            t.daemon = True
            t.start()
        stop.wait(args.duration)
        while sum(stats.finished.values()) < args.min_finished and time.monotonic() - started < 5 * args.duration:
            time.sleep(0.5)
        stop.set()
        for t in users:
            t.join(60)
        elapsed, harness_cpu = time.monotonic() - started, time.process_time() - cpu0
        for t in fault_threads:
            t.join(30)
        for s in servers:     # a server killed at the very end is back for the checks
            if s.proc is None or s.proc.poll() is not None:
                s.start()
        for p in procs:
            p.stop()
        checks = check_database(url, stats, env)
        result = report(args, stats, elapsed, faults, checks, servers, workers, harness_cpu)
        if args.json:
            Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1))
        return 0 if all(ok for _, ok, _ in checks) else 1
    finally:
        stop.set()
        for p in procs:
            p.stop()
        if not args.database_url:
            dbs.cleanup()
        signal.signal(signal.SIGTERM, previous)
        if args.keep_tmp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
