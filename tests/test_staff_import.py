"""Importing staff from a CSV or XLSX file with Chinese headers: each bad input the issue names gets a Chinese message
with its line, nothing is imported until the whole file is clean; the list of one-time passwords is exported without
formula injection; the command line (``bangban user|department|station``)."""
from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from engine import caches
from engine.cli import cli
from engine.errors import InvalidInput, TooLarge
from engine.models import AdminChange, User
from engine.passwords import check_password
from engine.staff_import import MAX_BYTES, MAX_ROWS, credentials_csv, credentials_xlsx, read_staff_file, safe_cell
from tests.conftest import actor
from tests.webclient import chinese, html_login, token
from web import create_app

HEADER = "登录名,姓名,角色,部门,服务站,手机,邮箱\n"
CLEAN = (HEADER + "li_si,李四,全科代办员,,,13900000001,lisi@wuzhi.gov.cn\n"
         "wang_wu,王五,部门业务专办员,县住房和城乡建设局,,0391-7221111,\n"
         "zhao_liu,赵六,agent、window,,詹店镇便民服务中心,,\n"
         "qian_qi,钱七,specialist,sthj,,,\n")


def _count(svc, table) -> int:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.conn.execute(select(func.count()).select_from(table)).scalar_one()


def _user(svc, username: str):
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.user_by_username(username)


def _xlsx(rows: list[list]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _refused(svc, data: bytes, filename: str = "staff.csv") -> InvalidInput:
    users, log = _count(svc, User.__table__), _count(svc, AdminChange.__table__)
    with pytest.raises(InvalidInput) as err:
        svc.import_staff(actor(svc, "admin1"), data, filename)
    assert chinese(err.value.message)
    assert (_count(svc, User.__table__), _count(svc, AdminChange.__table__)) == (users, log), "导入了部分账号"
    return err.value


# ---- reading the file ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding, data, said", [
    ("UTF-8", CLEAN.encode("utf-8"), "UTF-8"),
    ("UTF-8 BOM", CLEAN.encode("utf-8-sig"), "UTF-8（带 BOM）"),
    ("GBK", CLEAN.encode("gbk"), "GBK/GB18030"),
    ("GB18030", CLEAN.encode("gb18030"), "GBK/GB18030"),
])
def test_a_csv_in_utf8_or_gbk_is_read_and_says_which(encoding, data, said):
    staff = read_staff_file(data, "staff.csv")
    assert staff.encoding == said and staff.format == "CSV"
    assert [cells["display_name"] for _, cells in staff.lines] == ["李四", "王五", "赵六", "钱七"]


@pytest.mark.parametrize("data, fragment", [
    (CLEAN.encode("utf-16"), "UTF-16"),
    (b"\x80\x80\xff abc,def\n", "既不是 UTF-8 也不是 GBK/GB18030"),
    (b"\xef\xbb\xbf\xff\xfe", "不是有效的 UTF-8"),
])
def test_a_file_neither_utf8_nor_gbk_is_refused_in_chinese(data, fragment):
    with pytest.raises(InvalidInput) as err:
        read_staff_file(data, "staff.csv")
    assert fragment in err.value.message


def test_ten_megabytes_and_more_than_5000_rows_are_refused():
    with pytest.raises(TooLarge, match="10 MB"):
        read_staff_file(HEADER.encode() + b"a" * MAX_BYTES, "staff.csv")
    rows = HEADER + "".join(f"user{i},某{i},agent,,,,\n" for i in range(MAX_ROWS + 1))
    with pytest.raises(TooLarge, match="5000 行"):
        read_staff_file(rows.encode(), "staff.csv")
    assert len(read_staff_file((HEADER + "".join(f"user{i},某{i},agent,,,,\n" for i in range(MAX_ROWS))).encode()).lines) \
        == MAX_ROWS


@pytest.mark.parametrize("text, fragment", [
    ("姓名,角色\n张三,agent\n", "缺少必需的列「登录名」"),
    ("登录名,姓名,角色,籍贯\nzs1,张三,agent,河南\n", "未知的列「籍贯」"),
    ("登录名,姓名,角色\n", "只有表头"),
    ("", "文件是空的"),
])
def test_a_bad_header_is_refused(text, fragment):
    with pytest.raises(InvalidInput) as err:
        read_staff_file(text.encode(), "staff.csv")
    assert fragment in err.value.message + "".join(err.value.details or [])


# ---- every bad line, and nothing imported ------------------------------------------------------------------------------
def test_every_bad_line_is_reported_by_number_and_nothing_is_imported(svc):
    text = (HEADER + "li_si,李四,全科代办员,,,,\n"             # 2: fine
            "li_si,李四二,全科代办员,,,,\n"                    # 3: duplicate of line 2
            "agent1,王代办二,全科代办员,,,,\n"                  # 4: exists in the database
            "zs1,张三,巫师,,,,\n"                              # 5: unknown role
            "zs2,张三,specialist,县魔法局,,,\n"                # 6: unknown department
            "zs3,,agent,,,,\n"                                 # 7: missing name
            "zs4,张四,agent,,,12345,\n"                        # 8: bad phone
            "zs5,张\x07五,agent,,,,\n"                         # 9: control character
            "zs6,张六,agent,,某不存在的站,,\n"                  # 10: unknown station
            "zs7,张七,specialist,,,,\n")                       # 11: specialist without department
    err = _refused(svc, text.encode("gbk"))
    problems = err.details
    assert "GBK" in err.message and "未导入任何账号" in err.message
    expected = {3: "登录名「li_si」与第 2 行重复", 4: "登录名「agent1」已存在", 5: "未知的角色「巫师」",
                6: "未知的部门「县魔法局」", 7: "缺少姓名", 8: "手机号「12345」格式不对", 9: "姓名含有控制字符",
                10: "未知的服务站「某不存在的站」", 11: "部门业务专办员须指定所属部门"}
    for line, reason in expected.items():
        assert any(p.startswith(f"第 {line} 行：") and reason in p for p in problems), (line, reason, problems)
    assert not any(p.startswith("第 2 行") for p in problems)
    assert _user(svc, "li_si") is None


def test_logins_differing_only_in_case_are_duplicates(svc):
    err = _refused(svc, (HEADER + "Li_Si,李四,agent,,,,\nli_si,李四,agent,,,,\nAGENT1,某,agent,,,,\n").encode())
    assert any("第 3 行" in p and "与第 2 行重复" in p for p in err.details)
    assert any("第 4 行" in p and "已存在" in p for p in err.details)


def test_a_clean_file_is_imported_in_one_go_with_one_time_passwords(svc):
    admin = actor(svc, "admin1")
    check = svc.import_staff(admin, CLEAN.encode("gbk"), "staff.csv", dry_run=True)
    assert check["count"] == 4 and _user(svc, "li_si") is None
    assert check["accounts"][2]["roles"] == ["全科代办员", "帮办代办综合窗口"]
    result = svc.import_staff(admin, CLEAN.encode("gbk"), "staff.csv")
    assert result["count"] == 4 and result["encoding"] == "GBK/GB18030"
    for a in result["accounts"]:
        row = _user(svc, a["username"])
        assert row.active and row.must_change_password and check_password(row.password_hash, a["password"])
    assert (_user(svc, "wang_wu").department, _user(svc, "zhao_liu").station) == ("zjj", "zdz")
    assert _user(svc, "zhao_liu").roles == "agent,window"
    log = svc.admin_log(admin, kind="user")["entries"]
    assert [e["action"] for e in log[:4]] == ["导入账号"] * 4 and "第 5 行" in log[0]["reason"]
    again = _refused(svc, CLEAN.encode())          # the same file twice: every login exists now
    assert len(again.details) == 4


def test_an_xlsx_file_is_imported_and_numbers_are_read_as_text(svc):
    data = _xlsx([["登录名", "姓名", "角色", "部门", "手机"], ["sun_ba", "孙八", "全科代办员", None, 13900000008],
                  [None, None, None, None, None], ["zhou_jiu", "周九", "specialist", "县公安局", "0391-7220009"]])
    result = svc.import_staff(actor(svc, "admin1"), data, "名单.xlsx")
    assert result["format"] == "XLSX" and result["count"] == 2
    assert _user(svc, "sun_ba").phone == "13900000008" and _user(svc, "zhou_jiu").department == "gaj"
    bad = _xlsx([["登录名", "姓名", "角色"], ["ok_one", "好", "agent"], ["bad one", "坏", "agent"]])
    err = _refused(svc, bad, "bad.xlsx")
    assert err.details == [next(p for p in err.details if p.startswith("第 3 行：登录名「bad one」不合规"))]
    assert "不是有效的 XLSX" in _refused(svc, b"PK\x03\x04 not really a zip", "x.xlsx").message


# ---- the list of one-time passwords ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_exported_cells_never_start_a_formula(value):
    assert safe_cell(value).startswith("'")
    rows = [{"username": value, "display_name": value, "password": "Abc123456789"}]
    for cell in next(csv.reader(io.StringIO(credentials_csv(rows).decode("utf-8-sig").splitlines()[1]))):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    sheet = load_workbook(io.BytesIO(credentials_xlsx(rows))).active
    cells = [c for c in next(sheet.iter_rows(min_row=2, values_only=True))]
    assert all(not str(c).startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert sheet.cell(row=2, column=1).data_type == "s"


# ---- over the web --------------------------------------------------------------------------------------------------
@pytest.fixture
def app(svc):
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


def test_import_page_checks_first_then_imports_and_offers_the_list_once(app, svc):
    c = html_login(app, "admin1")
    page = c.get("/admin/import").text
    dirty = (HEADER + "li_si,李四,agent,,,,\nli_si,李四,agent,,,,\n").encode("gbk")
    r = c.post("/admin/import", data={"csrf_token": token(page), "action": "check",
                                      "file": (io.BytesIO(dirty), "staff.csv")}, content_type="multipart/form-data")
    assert r.status_code == 422 and "第 3 行：登录名「li_si」与第 2 行重复" in r.text and _user(svc, "li_si") is None
    r = c.post("/admin/import", data={"csrf_token": token(page), "action": "check",
                                      "file": (io.BytesIO(CLEAN.encode("gbk")), "staff.csv")},
               content_type="multipart/form-data")
    assert r.status_code == 200 and "检查通过，共 4 个账号" in r.text and "GBK" in r.text and _user(svc, "li_si") is None
    content = r.text.split('name="content" value="')[1].split('"')[0]
    r = c.post("/admin/import", data={"csrf_token": token(page), "action": "import", "content": content,
                                      "filename": "staff.csv"})
    assert r.status_code == 200 and "已导入 4 个账号" in r.text and r.headers["Cache-Control"] == "no-store"
    assert _user(svc, "qian_qi").must_change_password
    download = {"csrf_token": token(page), "format": "csv", "username": ["=cmd|' /C calc'!A0", "li_si"],
                "display_name": ["李四", "@x"], "password": ["Abc", "Def"]}
    r = c.post("/admin/import/credentials", data=download)
    assert r.status_code == 200 and r.mimetype == "text/csv" and "attachment" in r.headers["Content-Disposition"]
    assert "'=cmd" in r.data.decode("utf-8-sig") and "'@x" in r.data.decode("utf-8-sig")
    r = c.post("/admin/import/credentials", data=dict(download, format="xlsx"))
    assert load_workbook(io.BytesIO(r.data)).active.cell(row=2, column=1).value == "'=cmd|' /C calc'!A0"
    assert c.post("/admin/import/credentials", data={"username": "x"}).status_code == 400     # no CSRF token
    assert html_login(app, "auditor1").post("/admin/import/credentials", data=download).status_code == 403


def test_ten_megabytes_over_the_web_is_413_in_chinese(app, svc):
    c = html_login(app, "admin1")
    page = c.get("/admin/import").text
    big = HEADER.encode() + b"a" * MAX_BYTES    # within the request limit: read, then refused by the import
    body = (b"--x\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + token(page).encode() +
            b"\r\n--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
            b"Content-Type: text/csv\r\n\r\n" + big + b"\r\n--x--\r\n")
    r = c.post("/admin/import", data=body, content_type="multipart/form-data; boundary=x")
    assert r.status_code == 413 and "10 MB" in r.text
    huge = b"a" * (MAX_BYTES * 3)        # over the request limit: refused before the body is read
    r = c.post("/admin/import", data=huge, content_type="multipart/form-data; boundary=x")
    assert r.status_code == 413 and "10 MB" in r.text


# ---- the command line ---------------------------------------------------------------------------------------------
def test_going_live_from_the_command_line(db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()

    def run(*args, code: int = 0):
        caches.clear_all()
        result = runner.invoke(cli, list(args))
        assert result.exit_code == code, result.output
        return result.output

    assert "建立了 17 个部门" in run("init-db")
    out = run("user", "add", "--role", "admin", "--login", "guanli", "--name", "县局管理员")
    assert "一次性密码：" in out
    otp = out.split("一次性密码：")[1].split()[0]
    from engine.cli import open_service
    service = open_service()
    row = _user(service, "guanli")
    assert row.must_change_password and check_password(row.password_hash, otp) and row.roles == "admin"
    entry = service.admin_log(None)["entries"][0]
    assert entry["who"] == "命令行" and entry["action"] == "新建账号"
    service.db.dispose()
    assert "未知的角色「wizard」" in run("user", "add", "--role", "wizard", "--login", "xx1", "--name", "某", code=1)
    assert "至少要保留一名" in run("user", "deactivate", "guanli", code=1)

    assert "已新增服务站" in run("station", "add", "zdz", "詹店镇便民服务中心", "乡镇（街道）便民服务中心")
    path = tmp_path / "staff.csv"
    path.write_bytes(CLEAN.encode("gbk"))
    assert "检查通过，共 4 个账号" in run("user", "import", str(path), "--dry-run")
    out = run("user", "import", str(path))
    assert "已导入 4 个账号" in out and "按 GBK/GB18030 编码读取" in out and out.count("\t") == 8
    dirty = tmp_path / "dirty.csv"
    dirty.write_text(HEADER + "li_si,李四,agent,,,,\nnew_one,新,巫师,,,,\n", encoding="utf-8")
    out = run("user", "import", str(dirty), code=1)
    assert "第 2 行：登录名「li_si」已存在" in out and "第 3 行：未知的角色「巫师」" in out
    assert "li_si" in run("user", "list") and "共 4 个账号" in run("user", "list", "--search", "_")
    assert "结束了 0 个登录会话" in run("user", "deactivate", "li_si")
    assert "li_si" not in run("user", "list") and "已停用" in run("user", "list", "--all")
    assert "的一次性密码：" in run("user", "reset-password", "wang_wu")
    assert "不存在" in run("user", "reset-password", "nobody", code=1)

    assert "县公安局" in run("department", "list")
    assert "已新增部门" in run("department", "add", "xinbu", "县新设局", "--phone", "0391-7229999")
    assert "已修改部门" in run("department", "edit", "xinbu", "--name", "县新设局（筹）")
    assert "已删除部门" in run("department", "remove", "xinbu")
    out = run("department", "remove", "zjj", code=1)
    assert "不能删除" in out and "1 个在用账号" in out
    assert "已修改服务站" in run("station", "edit", "zdz", "--phone", "0391-7231001")
    assert "詹店镇便民服务中心" in run("station", "list")
    assert "1 个在用账号" in run("station", "deactivate", "zdz", code=1)
    run("user", "deactivate", "zhao_liu")
    assert "已停用服务站" in run("station", "deactivate", "zdz")
    assert "服务站类型须为" in run("station", "add", "x1", "某处", "超市", code=1)
