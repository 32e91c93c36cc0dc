"""Demo data: two applicant units, staff for every role, a specialist in every department of the catalogue."""
from __future__ import annotations

from werkzeug.security import generate_password_hash

from .db import Database
from .processes import Catalogue

DEMO_PASSWORD = "demo1234"

UNITS = [
    {"name": "武陟县华瑞食品有限公司", "credit_code": "91410823MA9HR0001X", "address": "武陟县产业集聚区华瑞路8号",
     "postcode": "454950", "leader_name": "张华瑞", "leader_phone": "0391-7221001"},
    {"name": "河南嘉禾新材料科技有限公司", "credit_code": "91410823MA9JH0002Y", "address": "武陟县詹店镇嘉禾大道66号",
     "postcode": "454950", "leader_name": "李嘉禾", "leader_phone": "0391-7221002"},
]

SAMPLE_APPLICATION = {
    "unit_name": "武陟县华瑞食品有限公司", "postcode": "454950", "unit_address": "武陟县产业集聚区",
    "leader_name": "张华瑞", "leader_phone": "0391-7221001", "handler_name": "张三", "handler_phone": "13800000000",
    "project_name": "年产万吨食品项目", "fund_source": "国内企业投资", "land_nature": "出让", "key_project": "否",
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
]


def demo_users(catalogue: Catalogue) -> list[tuple]:
    users = list(STAFF)
    for code, name in catalogue.departments.items():
        users.append((f"zb_{code}", f"{name}专办员", "specialist", code, None))
    return users


def load_demo(db: Database, catalogue: Catalogue, password: str = DEMO_PASSWORD, hash_method: str = "scrypt") -> int:
    """Insert the demo units and users unless they exist; returns how many users were added."""
    added = 0
    pw_hash = generate_password_hash(password, method=hash_method)
    with db.unit_of_work() as uow:
        unit_ids = []
        for unit in UNITS:
            row = uow.repo.unit_by_name(unit["name"])
            unit_ids.append(row.id if row else uow.repo.insert_unit(**unit))
        for username, display, roles, dept, unit_idx in demo_users(catalogue):
            if uow.repo.user_by_username(username) is not None:
                continue
            uow.repo.insert_user(username=username, password_hash=pw_hash, display_name=display, roles=roles,
                                 department=dept, unit_id=unit_ids[unit_idx] if unit_idx is not None else None,
                                 active=True)
            added += 1
        uow.commit()
    return added
