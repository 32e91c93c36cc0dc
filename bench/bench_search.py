#!/usr/bin/env python
"""Case search at 0, 10,000 and 100,000 cases (issue 14, item 2): median and p90 of realistic queries, in-process
through the use case ``Bangban.search_cases`` (scope, index query, capped count), on SQLite and PostgreSQL.

    python bench/bench_search.py                      # SQLite and PostgreSQL, 0 / 10,000 / 100,000 cases
    python bench/bench_search.py --db sqlite --sizes 0,10000 --runs 20

Queries (each ``--runs`` times over different values, as the agent 全科代办员 who sees every case, and once more
as an applicant who sees only its unit): a full case number, its last four digits, a two-character and a
four-character unit name fragment, a project name word, a credit code.

The fast generator (:func:`generate`): preloading 100,000 cases through ``start_case`` would take hours, so it
inserts consistent rows directly, in batches: units (Chinese names from combined name parts, unique credit codes of
the 18-character form), cases (case numbers 410823YYYYMMDDNNNN over ~two years, 1–250 a day, unit and project drawn
from realistic distributions, statuses mixed, on the current process version) and their search rows through
``Repository.index_cases``, the function the engine's intake uses. The generated cases are for listing and search
only: their ``state`` is a placeholder (no event history), so they cannot be opened or stepped.

PostgreSQL: a fresh schema ``bench_<random>`` on postgresql://root@127.0.0.1:5432/test, dropped at the end; ANALYZE
after each load (as autovacuum would). SQLite: a file in a temp dir.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("BANGBAN_ARGON2_TESTING", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Databases, percentile  # noqa: E402

PLACES = ["武陟县", "焦作市", "河南", "温县", "修武县", "博爱县", "沁阳市", "孟州市", ""]
CORES = ["华瑞", "嘉禾", "恒通", "鑫源", "宏达", "金穗", "瑞丰", "中原", "豫北", "太行", "沁河", "黄河", "龙源", "天宇",
         "博远", "兴隆", "永昌", "广汇", "德润", "康达", "丰泽", "盛世", "铭泰", "锦程", "利民", "富康", "汇丰", "新兴",
         "东方", "万和", "安泰", "长青", "宝丰", "昌盛", "聚力", "佳美", "远航", "明德", "信达", "诚信"]
TRADES = ["食品", "新材料", "机械制造", "纺织", "农业", "化工", "物流", "建材", "电子", "医药", "能源", "商贸", "环保",
          "汽车配件", "包装", "印刷", "造纸", "生物科技", "粮油", "畜牧"]
SUFFIXES = ["有限公司", "有限责任公司", "股份有限公司", "专业合作社", "实业有限公司", "科技有限公司"]
PRODUCTS = ["食品", "复合材料", "冷链仓储", "饲料", "面粉", "钢结构", "光伏组件", "纸制品", "塑料制品", "汽车零部件",
            "中药饮片", "有机肥", "铝型材", "纺织面料", "包装材料", "商品混凝土", "山药深加工", "怀菊花加工"]
PROJECTS = ["年产{n}万吨{p}项目", "{p}生产线建设项目", "{p}扩建项目", "{place}{p}产业园项目", "{p}技术改造项目",
            "新建{p}厂房项目", "{p}仓储物流中心项目"]
STATUS = ["active"] * 5 + ["completed"] * 3 + ["refused", "terminated"]
CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def unit_rows(n: int, rng: random.Random, start_id: int) -> list[dict]:
    names, out = set(), []
    while len(out) < n:
        name = rng.choice(PLACES) + rng.choice(CORES) + rng.choice(CORES[:12] + [""]) + rng.choice(TRADES) + rng.choice(SUFFIXES)
        if name in names:
            continue
        names.add(name)
        code = "9141" + "".join(rng.choice("0123456789") for _ in range(4)) + "MA" + \
               "".join(rng.choice(CODE_CHARS) for _ in range(7)) + rng.choice(CODE_CHARS)
        out.append({"id": start_id + len(out), "name": name, "credit_code": code, "status": "approved"})
    return out


def generate(svc, total: int, rng: random.Random, batch: int = 2000) -> None:
    """Add cases (with their search rows) until the database holds ``total``. See the module's docstring."""
    from sqlalchemy import func, insert, select

    from engine.models import Case, Unit, User
    cases, units, users = Case.__table__, Unit.__table__, User.__table__
    with svc.db.unit_of_work() as uow:
        conn = uow.conn
        have = conn.execute(select(func.count()).select_from(cases)).scalar_one()
        if have >= total:
            return
        unit_list = conn.execute(select(units.c.id, units.c.name, units.c.credit_code)).all()
        if len(unit_list) < 500:
            start = (conn.execute(select(func.max(units.c.id))).scalar() or 0) + 1
            conn.execute(insert(units), unit_rows(3000, rng, start))
            unit_list = conn.execute(select(units.c.id, units.c.name, units.c.credit_code)).all()
        creator = conn.execute(select(users.c.id).where(users.c.username == "agent1")).scalar_one()
        version_id = svc.current_version_id
        next_id = (conn.execute(select(func.max(cases.c.id))).scalar() or 0) + 1
        last_no = conn.execute(select(func.max(cases.c.case_no))).scalar()
        uow.commit()
    # case numbers: day after day from 2024-12-01, 1–250 cases a day (busier on weekdays)
    day = datetime(2024, 12, 1, 1, 0, tzinfo=UTC) if last_no is None else \
        datetime.strptime(last_no[6:14], "%Y%m%d").replace(tzinfo=UTC) + timedelta(days=1, hours=1)
    weights = [rng.paretovariate(1.2) for _ in unit_list]          # a few units apply often, most rarely
    todo = total - have
    while todo > 0:
        rows, index = [], []
        while len(rows) < min(batch, todo):
            per_day = rng.randint(1, 40) if day.weekday() >= 5 else rng.randint(60, 250)
            for seq in range(1, per_day + 1):
                if len(rows) >= min(batch, todo):
                    break
                unit = rng.choices(unit_list, weights)[0]
                at = day + timedelta(minutes=seq * 2)
                title = rng.choice(PROJECTS).format(n=rng.randint(1, 50), p=rng.choice(PRODUCTS), place=rng.choice(PLACES))
                no = f"410823{day:%Y%m%d}{seq:04d}"
                rows.append({"id": next_id, "case_no": no, "version_id": version_id, "process_id": "bangban_case",
                             "title": title, "unit_id": unit.id, "unit_name": unit.name, "status": rng.choice(STATUS),
                             "stage": "办理", "lead_user": "agent1", "created_by": creator, "created_at": at,
                             "updated_at": at, "row_version": 1, "event_seq": 0, "last_hash": "", "state": "{}",
                             "case_vars": {}, "project_code": None})
                index.append({"case_id": next_id, "case_no": no, "unit_name": unit.name, "credit_code": unit.credit_code,
                              "title": title})
                next_id += 1
            day += timedelta(days=1)
        with svc.db.unit_of_work() as uow:
            uow.conn.execute(insert(cases), rows)
            uow.repo.index_cases(index)          # the engine's own function: the same rows intake writes
            uow.commit()
        todo -= len(rows)


def analyze(svc) -> None:
    from sqlalchemy import text
    with svc.db.unit_of_work() as uow:
        uow.conn.execute(text("ANALYZE"))
        uow.commit()


def queries(svc, rng: random.Random, runs: int) -> dict[str, list[str]]:
    """Realistic query values drawn from the database (or from the name parts when it is empty)."""
    from sqlalchemy import select

    from engine.models import Case, Unit
    with svc.db.unit_of_work(write=False) as uow:
        nos = list(uow.conn.execute(select(Case.__table__.c.case_no).order_by(Case.__table__.c.id.desc()).limit(5000)).scalars())
        codes = list(uow.conn.execute(select(Unit.__table__.c.credit_code).limit(3000)).scalars())
        names = list(uow.conn.execute(select(Unit.__table__.c.name).limit(3000)).scalars())
    nos = nos or ["410823202612010018"]
    return {
        "完整办件编号": [rng.choice(nos) for _ in range(runs)],
        "编号后四位": [rng.choice(nos)[-4:] for _ in range(runs)],
        "单位名两字": [rng.choice(CORES) for _ in range(runs)],
        "单位名四字": [_fragment(rng.choice(names), rng) for _ in range(runs)],
        "项目名称词": [rng.choice(PRODUCTS) for _ in range(runs)],
        "统一社会信用代码": [rng.choice([c for c in codes if c] or ["91410823MA9HR0001H"]) for _ in range(runs)],
    }


def _fragment(name: str, rng: random.Random) -> str:
    """Four characters of a unit name, after its place name (e.g. 瑞丰机械 of 武陟县瑞丰机械制造有限公司)."""
    start = next((len(p) for p in PLACES if p and name.startswith(p)), 0)
    return name[start:start + 4]


def measure(svc, actor, values: dict[str, list[str]]) -> dict[str, dict]:
    out, every = {}, []
    for kind, qs in values.items():
        times, totals = [], []
        svc.search_cases(actor, q=qs[0])                     # warm the statement cache
        for q in qs:
            t0 = time.perf_counter()
            found = svc.search_cases(actor, q=q)
            times.append((time.perf_counter() - t0) * 1000)
            totals.append(f"{found['total']}{'+' if found['total_capped'] else ''}")
        times.sort()
        every += times
        out[kind] = {"median": statistics.median(times), "p90": percentile(times, 90), "max": times[-1],
                     "found": totals[len(totals) // 2]}
    every.sort()
    out["全部"] = {"median": statistics.median(every), "p90": percentile(every, 90), "max": every[-1], "found": ""}
    return out


def run(kind: str, sizes: list[int], runs: int, seed: int) -> list[tuple]:
    from engine import processes
    from engine.db import Database, normalize_url
    from engine.demo import load_demo
    from engine.migrate import upgrade
    from engine.services import Bangban

    def actor_of(svc, username: str):
        from engine.access import Actor
        with svc.db.unit_of_work(write=False) as uow:
            return Actor.from_row(uow.repo.user_by_username(username))
    rng = random.Random(seed)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        dbs = Databases(kind, Path(tmp))
        try:
            url = dbs.new("search")
            upgrade(normalize_url(url))
            db = Database(url)
            svc = Bangban.open(db, processes.read_dir(Path(__file__).resolve().parent.parent / "processes"))
            load_demo(db, svc.current.catalogue)
            agent, applicant = actor_of(svc, "agent1"), actor_of(svc, "huarui")
            for size in sizes:
                t0 = time.perf_counter()
                generate(svc, size, rng)
                if kind == "postgres":
                    analyze(svc)
                load_s = time.perf_counter() - t0
                values = queries(svc, rng, runs)
                for who, act in (("代办员（全部）", agent), ("申请单位（本单位）", applicant)):
                    figures = measure(svc, act, values)
                    for q, f in figures.items():
                        results.append((kind, size, who, q, f["median"], f["p90"], f["max"], f["found"]))
                print(f"{kind} {size:>7} cases loaded in {load_s:.1f} s", file=sys.stderr)
            db.dispose()
        finally:
            dbs.cleanup()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--sizes", default="0,10000,100000")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"{'db':8} {'cases':>7} {'who':12} {'query':10} {'median ms':>9} {'p90 ms':>7} {'max ms':>7}  found")
    for kind in kinds:
        for row in run(kind, sizes, args.runs, args.seed):
            k, size, who, q, med, p90, mx, found = row
            print(f"{k:8} {size:>7} {who:12} {q:10} {med:9.2f} {p90:7.2f} {mx:7.2f}  {found}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
