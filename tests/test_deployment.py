"""The service as a county runs it: several real ``bangban serve`` processes on one database, restarts, kill -9,
and a database that goes away. Each test ends with ``bangban audit verify --all`` run as its own process."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from engine.demo import SAMPLE_APPLICATION
from tests import helpers as h
from tests.conftest import ROOT
from tests.webclient import LiveServers, api_login, assert_json_error, token
from web import create_app

BANGBAN = str(Path(sys.executable).parent / "bangban")
SECRET = "shared-by-every-server-of-the-test"
APPROVE = {"item_decision": "准予许可", "licence_no": "批-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(db_url: str) -> dict:
    return dict(os.environ, DATABASE_URL=db_url, BANGBAN_SECRET_KEY=SECRET, PYTHONUNBUFFERED="1")


class Server:
    """One ``bangban serve --no-worker`` process."""

    def __init__(self, db_url: str, log_dir: Path):
        self.db_url, self.log_dir = db_url, log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        with open(self.log_dir / f"serve-{self.port}.log", "ab") as log:   # the child keeps its own descriptor
            self.proc = subprocess.Popen([BANGBAN, "serve", "--no-worker", "--host", "127.0.0.1", "--port",
                                          str(self.port), "--threads", "4"], env=env_for(self.db_url), stdout=log,
                                         stderr=log, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.log_dir / f"serve-{self.port}.log").read_text()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("bangban serve did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def servers(svc, db_url, tmp_path):
    """Two freshly started server processes on the test database (with the demo users of ``svc``)."""
    started = [Server(db_url, tmp_path).start(), Server(db_url, tmp_path).start()]
    yield started
    for s in started:
        s.kill()


def verify_all(db_url: str) -> str:
    done = subprocess.run([BANGBAN, "audit", "verify", "--all"], env=env_for(db_url), capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Person:
    """Someone using the JSON API, each of their requests answered by the next server in turn."""

    def __init__(self, servers: list[Server], username: str):
        self.client = LiveServers([s.url for s in servers])
        self.client.ok("POST", "/api/login", {"username": username, "password": "demo1234"})
        self.username = username

    def task(self, case_no: str, name: str, title: str | None = None) -> str:
        tasks = [t for t in self.client.ok("GET", "/api/tasks")["tasks"]
                 if t["case_no"] == case_no and t["name"] == name and (title is None or t["title"] == title)]
        assert len(tasks) == 1, (self.username, case_no, name, title, tasks)
        return tasks[0]["task_id"]

    def do(self, case_no: str, name: str, form: dict, title: str | None = None) -> dict:
        return self.client.ok("POST", f"/api/tasks/{self.task(case_no, name, title)}/complete", form)


def people(servers, *names: str) -> dict[str, Person]:
    return {n: Person(servers, n) for n in names}


def test_two_servers_alternating_every_request_lose_nothing(servers, db_url):
    p = people(servers, "huarui", "jiahe", "agent1", "window1", "chief1", "zb_sthj", "zb_zjj", "zb_gdgs")
    # An ordinary case with a 补正 round and a refused item, to its end.
    no = p["huarui"].client.ok("POST", "/api/cases", {"data": SAMPLE_APPLICATION}, status=201)["case_no"]
    p["agent1"].do(no, "受理审核", h.accept())
    p["agent1"].do(no, "材料交接并签订委托书", h.commission())
    p["agent1"].do(no, "分派服务事项", {"service_items": ["hp", "xf", "gd"]})
    p["zb_sthj"].do(no, "部门办理", h.needs_correction("补充公示材料"), "环评")
    p["huarui"].do(no, "补正材料", h.supplement(), "环评")
    p["zb_sthj"].do(no, "部门办理", APPROVE, "环评")
    p["zb_zjj"].do(no, "部门办理", APPROVE, h.ITEM_NAMES["xf"])
    p["zb_gdgs"].do(no, "部门办理", h.refuse("容量不足"), "供电")
    p["agent1"].do(no, "汇总办理结果", {"results_collected": True})
    p["agent1"].do(no, "统一送达", h.deliver())
    p["huarui"].do(no, "签收办结单", h.receipt())
    p["huarui"].do(no, "评价代办服务", h.rating())
    for dept in ("sthj", "zjj", "gdgs"):
        p["window1"].do(no, "评价部门业务专办窗口", h.rating(), h.DEPT_NAMES[dept])
    case = p["agent1"].client.ok("GET", f"/api/cases/{no}")
    assert case["case"]["status"] == "completed"
    assert {i["code"]: i["state"] for i in case["items"]} == {"hp": "准予许可", "xf": "准予许可", "gd": "不予许可"}

    # A key project led by a chief officer, terminated at the applicant's request while the departments work.
    key = p["jiahe"].client.ok("POST", "/api/cases", {"data": dict(
        SAMPLE_APPLICATION, unit_name="河南嘉禾新材料科技有限公司", key_project="重点项目",
        service_items=["hp", "gd"])}, status=201)["case_no"]
    p["agent1"].do(key, "受理审核", h.accept())
    p["window1"].do(key, "指派项目首席服务员", {"chief_officer": "chief1", "designated_by": "县发展和改革委员会（重点项目）"})
    p["chief1"].do(key, "签订代办委托协议", h.agreement())
    p["chief1"].do(key, "分派服务事项", {"service_items": ["hp", "gd"]})
    p["zb_gdgs"].do(key, "部门办理", APPROVE, "供电")
    p["jiahe"].client.ok("POST", f"/api/cases/{key}/messages/termination_request",
                         {"reason": "申请单位申请终止帮办代办服务", "remark": "投资计划调整"})
    p["chief1"].do(key, "审核终止申请", {"termination_decision": "同意终止", "termination_opinion": "同意"})
    p["chief1"].do(key, "办理终止手续", h.slip("申请单位申请终止帮办代办服务"))
    assert p["chief1"].client.ok("GET", f"/api/cases/{key}")["case"]["status"] == "terminated"

    used = {server for server, *_ in p["agent1"].client.log}
    assert used == {s.url for s in servers}
    assert "共核验 2 件，通过 2 件，不通过 0 件" in verify_all(db_url)


def test_a_server_killed_and_restarted_mid_case(servers, db_url):
    p = people(servers, "huarui", "agent1", "zb_sthj", "zb_zjj")
    no = p["huarui"].client.ok("POST", "/api/cases", {"data": dict(SAMPLE_APPLICATION, service_items=["hp", "xf"])},
                               status=201)["case_no"]
    p["agent1"].do(no, "受理审核", h.accept())
    p["agent1"].do(no, "材料交接并签订委托书", h.commission())
    p["agent1"].do(no, "分派服务事项", {"service_items": ["hp", "xf"]})
    for server in servers:   # both servers restart (kill -9) between the dispatch and the departments' decisions
        server.kill()
        server.start()
    p["zb_sthj"].do(no, "部门办理", APPROVE, "环评")
    p["zb_zjj"].do(no, "部门办理", APPROVE, h.ITEM_NAMES["xf"])
    assert [t["name"] for t in p["agent1"].client.ok("GET", "/api/tasks")["tasks"] if t["case_no"] == no] == ["汇总办理结果"]
    assert "通过 1 件，不通过 0 件" in verify_all(db_url)


KILL_BEFORE_COMMIT = textwrap.dedent("""
    import os, signal, sys
    from engine.access import Actor
    from engine.cli import open_service
    from engine.db import UnitOfWork

    def killed(self):          # the step has written everything; the process dies before COMMIT
        os.kill(os.getpid(), signal.SIGKILL)

    UnitOfWork.commit = killed
    service = open_service()
    with service.db.unit_of_work(write=False) as uow:
        who = Actor.from_row(uow.repo.user_by_username(sys.argv[1]))
    service.complete_task(who, sys.argv[2], {"item_decision": "准予许可", "licence_no": "批-1"})
""")


def test_kill_9_in_the_middle_of_a_step_leaves_nothing_half_written(svc, db_url):
    h.freeze_clock()
    no = h.start(svc, service_items=["hp"])
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["hp"])
    task = h.find_task(svc, "zb_sthj", "部门办理", "环评", no)
    before = h.snapshot(svc, no)
    with svc.db.unit_of_work(write=False) as uow:
        counts = uow.repo.table_counts()
    died = subprocess.run([sys.executable, "-c", KILL_BEFORE_COMMIT, "zb_sthj", task["task_id"]], env=env_for(db_url),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert h.snapshot(svc, no) == before
    with svc.db.unit_of_work(write=False) as uow:
        assert uow.repo.table_counts() == counts
    # The same step, taken again, goes through (no lock or half-written row left behind).
    h.complete(svc, "zb_sthj", "部门办理", "环评", case_no=no, **APPROVE)
    assert h.open_tasks(svc, no) == [("汇总办理结果", None)]
    assert "通过 1 件，不通过 0 件" in verify_all(db_url)


def test_an_unreachable_database_gives_503_with_retry_after(svc, db_url):
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    client = api_login(app, "agent1")
    html = app.test_client()
    working = svc.db.engine
    dead = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2" if not svc.db.is_sqlite else \
        "sqlite:////nonexistent-bangban-directory/db.sqlite3"
    svc.db.engine = create_engine(dead)
    try:
        for r in (client.get("/api/tasks"), client.post("/api/cases", json={"data": SAMPLE_APPLICATION}),
                  client.post("/api/login", json={"username": "agent1", "password": "demo1234"})):
            body = assert_json_error(r, 503, "稍后重试")
            assert body["error"] == "unavailable" and r.headers["Retry-After"] == "5"
        page = html.get("/login")
        assert page.status_code == 200             # the login form itself needs no database
        r = html.post("/login", data={"username": "agent1", "password": "demo1234", "csrf_token": token(page.text)})
        assert r.status_code == 503 and "稍后重试" in r.text and r.headers["Retry-After"] == "5"
    finally:
        svc.db.engine.dispose()
        svc.db.engine = working
    assert client.get("/api/tasks").status_code == 200        # back as soon as the database is
