"""Demo data: two applicant units, staff for every role, a specialist in every department of the catalogue, the
departments (from the catalogue, when the table is empty) and two service stations."""
from __future__ import annotations

from werkzeug.security import generate_password_hash

from .clock import service_today
from .db import Database
from .passwords import hash_password
from .processes import Catalogue

DEMO_PASSWORD = "demo1234"

UNITS = [
    {"name": "武陟县华瑞食品有限公司", "credit_code": "91410823MA9HR0001H", "legal_representative": "张华瑞",
     "address": "武陟县产业集聚区华瑞路8号", "postcode": "454950", "leader_name": "张华瑞", "leader_phone": "0391-7221001",
     "contact_name": "张三", "contact_phone": "13800000000", "status": "approved"},
    {"name": "河南嘉禾新材料科技有限公司", "credit_code": "91410823MA9JH00029", "legal_representative": "李嘉禾",
     "address": "武陟县詹店镇嘉禾大道66号", "postcode": "454950", "leader_name": "李嘉禾", "leader_phone": "0391-7221002",
     "contact_name": "李四", "contact_phone": "13900000000", "status": "approved"},
]
"""The demo units: valid 统一社会信用代码 (GB 32100-2015 check characters), approved; ``huarui`` and ``jiahe`` are
their administrators."""

SAMPLE_APPLICATION = {
    "unit_name": "武陟县华瑞食品有限公司", "postcode": "454950", "unit_address": "武陟县产业集聚区华瑞路8号",
    "leader_name": "张华瑞", "leader_phone": "0391-7221001", "handler_name": "张三", "handler_phone": "13800000000",
    "project_name": "年产万吨食品项目", "project_code": "2026-410823-14-03-000001", "fund_source": "国内企业投资",
    "land_nature": "出让", "key_project": "否",
    "commission_scope": "全部", "construction_started": "否", "service_items": ["hp", "xf", "gd"],
    "channel": "综合窗口", "service_mode": "现场服务", "declaration": True, "commitment": True,
}
"""A filled-in application of the first demo unit (annex 2), for examples, tests and the benchmark."""

STAFF = [
    # username, display name, roles, department, unit index
    ("huarui", "张经办（华瑞食品）", "applicant", None, 0),
    ("jiahe", "李经办（嘉禾新材）", "applicant", None, 1),
    ("agent1", "王代办", "agent", None, None),
    ("agent2", "刘代办", "agent", None, None),
    ("chief1", "赵首席", "chief,agent", None, None),
    ("chief2", "钱首席", "chief,agent", None, None),
    ("window1", "孙窗口", "window", None, None),
    ("supervisor1", "周科长", "supervisor", None, None),
    ("owner1", "吴流程", "process_owner", None, None),
    ("auditor1", "郑审计", "auditor", None, None),
    ("fgw1", "冯发改", "key_projects", None, None),
    ("kgj1", "柯科工", "key_enterprises", None, None),
    ("station1", "詹便民", "station", None, None),
    ("admin1", "冯管理", "admin", None, None),
]
STATIONS = [   # 基层政务服务站, entered only into an empty stations table
    {"code": "zdz", "name": "詹店镇便民服务中心", "kind": "乡镇（街道）便民服务中心", "phone": "0391-7290001"},
    {"code": "yzcg", "name": "武陟县邮政城关网点", "kind": "邮政网点", "phone": "0391-7290002"},
]
USER_STATIONS = {"station1": "zdz"}
KEY_DESIGNATIONS = [   # the demo's key register (the sample application's project is a designated key project)
    {"kind": "project", "code": "2026-410823-14-03-000001", "name": "年产万吨食品项目", "document_no": "武发改重〔2026〕3号",
     "created_by": "fgw1"},
    {"kind": "project", "code": "2026-410823-26-03-000088", "name": "年产5万吨新型复合材料项目",
     "document_no": "武发改重〔2026〕7号", "created_by": "fgw1"},
    {"kind": "enterprise", "code": "91410823MA9JH00029", "name": "河南嘉禾新材料科技有限公司",
     "document_no": "武科工重企〔2026〕2号", "created_by": "kgj1"},
]


def demo_users(catalogue: Catalogue) -> list[tuple]:
    users = list(STAFF)
    for code, name in catalogue.departments.items():
        users.append((f"zb_{code}", f"{name}专办员", "specialist", code, None))
    return users


def load_demo(db: Database, catalogue: Catalogue, password: str = DEMO_PASSWORD, hash_method: str | None = None) -> int:
    """Insert the demo units and users unless they exist; returns how many users were added. The password is hashed
    once for all of them (argon2id; ``hash_method``: one of werkzeug's instead, as hashes made before argon2 were)."""
    added = 0
    pw_hash = generate_password_hash(password, method=hash_method) if hash_method else hash_password(password)
    with db.unit_of_work() as uow:
        if not uow.repo.count_departments():
            for code, name in catalogue.departments.items():
                uow.repo.insert_department(code=code, name=name, phone=None, active=True)
        for station in STATIONS:
            if uow.repo.station(station["code"]) is None and uow.repo.station_by_name(station["name"]) is None:
                uow.repo.insert_station(active=True, **station)
        unit_ids = []
        for unit in UNITS:
            row = uow.repo.unit_by_name(unit["name"])
            unit_ids.append(row.id if row else uow.repo.insert_unit(**unit))
        for username, display, roles, dept, unit_idx in demo_users(catalogue):
            if uow.repo.user_by_username(username) is not None:
                continue
            uow.repo.insert_user(username=username, password_hash=pw_hash, display_name=display, roles=roles,
                                 department=dept, unit_id=unit_ids[unit_idx] if unit_idx is not None else None,
                                 active=True, unit_admin=unit_idx is not None,
                                 **({"station": USER_STATIONS[username]} if username in USER_STATIONS else {}))
            added += 1
        _load_registers(uow)
        uow.commit()
    return added


def _load_registers(uow) -> None:
    """The demo key register, only into an empty table (the stations are entered with the users)."""
    from datetime import UTC, date, datetime
    if not uow.repo.count_key_designations():
        for d in KEY_DESIGNATIONS:
            uow.repo.insert_key_designation(**d, valid_from=date(2026, 1, 1), valid_to=date(2028, 12, 31),
                                            created_at=datetime(2026, 1, 5, 2, 0, tzinfo=UTC))


def load_sample_cases(service) -> int:
    """Three cases at different points of the flow, driven through the real use cases (only into an empty database):
    a new application, a key project with its departments at work, and a finished case with its evaluations."""
    if "bangban_case" not in service.current.manifest["processes"] or service.search_cases(_actor(service, "agent1"))["total"]:
        return 0

    def act(username: str, task_name: str, case_no: str, **form) -> None:
        who = _actor(service, username)
        task = next(t for t in service.inbox(who) if t["case_no"] == case_no and t["name"] == task_name)
        service.complete_task(who, task["task_id"], form)

    service.start_case(_actor(service, "huarui"), "bangban_case",
                       dict(SAMPLE_APPLICATION, project_name="华瑞食品冷链仓储项目", service_items=["gh", "xf", "gs"]))

    key = service.start_case(_actor(service, "jiahe"), "bangban_case", dict(
        SAMPLE_APPLICATION, unit_name=UNITS[1]["name"], unit_address=UNITS[1]["address"], leader_name="李嘉禾",
        handler_name="李四", project_name="年产5万吨新型复合材料项目", project_code="2026-410823-26-03-000088",
        key_project="重点项目",
        total_investment=32000, service_items=["xmlx", "hp", "ap", "gd"])).case_no
    act("agent1", "受理审核", key, review_decision="受理", authorization_checked=True)
    act("window1", "指派项目首席服务员", key, chief_officer="chief1", designated_by="县发展和改革委员会（重点项目）")
    act("chief1", "签订代办委托协议", key, agreement_signed=True, materials_received="项目备案申请、环评报告书、安全预评价报告",
        service_mode_confirmed="上门服务")
    act("chief1", "分派服务事项", key, service_items=["xmlx", "hp", "ap", "gd"], dispatch_note="重点项目，并联推进")
    act("zb_fgw", "部门办理", key, item_decision="准予许可", licence_no="武发改备〔2026〕88号")
    act("zb_sthj", "部门办理", key, item_decision="需要补正", correction_request="补充大气污染防治专章",
        correction_due=service_today(10).isoformat())

    done = service.start_case(_actor(service, "huarui"), "bangban_case", dict(SAMPLE_APPLICATION)).case_no
    act("agent2", "受理审核", done, review_decision="受理", authorization_checked=True)
    act("agent2", "材料交接并签订委托书", done, commission_signed=True, materials_received="营业执照、项目备案证明",
        service_mode_confirmed="现场服务")
    act("agent2", "分派服务事项", done, service_items=["hp", "xf", "gd"])
    act("zb_sthj", "部门办理", done, item_decision="准予许可", licence_no="焦环审〔2026〕12号")
    act("zb_zjj", "部门办理", done, item_decision="准予许可", licence_no="武住建消审〔2026〕31号")
    act("zb_gdgs", "部门办理", done, item_decision="准予许可", licence_no="供电方案〔2026〕105号")
    act("agent2", "汇总办理结果", done, results_collected=True)
    act("agent2", "统一送达", done, delivery_method="现场转交", delivery_date=service_today().isoformat(),
        work_record="一次受理、并联办理三项，全部按时办结，现场转交批文。", filed=True)
    act("huarui", "签收办结单", done, results_received=True)
    act("huarui", "评价代办服务", done, rating="非常满意", comments="全程代办，省时省力")
    for _ in range(3):
        act("window1", "评价部门业务专办窗口", done, rating="满意")
    return 3


def _actor(service, username: str):
    from .access import Actor
    with service.db.unit_of_work(write=False) as uow:
        return Actor.from_row(uow.repo.user_by_username(username))
