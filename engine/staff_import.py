"""Staff lists from a CSV or XLSX file with Chinese headers (登录名, 姓名, 角色, 部门, 服务站, 手机, 邮箱), and the list
of logins with their one-time passwords as a file to download. Pure parsing and checking, no SQL: the use case
(:mod:`engine.usecases.staff`) passes in the directory and the logins that exist already, and imports nothing unless
every line is clean.

- CSV: UTF-8 (with or without BOM) is tried strictly first, then GB18030 (which covers GBK and GB2312); the result
  says which was read. Anything else is refused with a Chinese message.
- XLSX: read with openpyxl in read-only mode, first sheet; the archive's unpacked size is checked first (a small file
  that unpacks to gigabytes is refused before openpyxl sees it).
- At most ``MAX_BYTES`` (10 MB) and ``MAX_ROWS`` (5,000) lines of staff.
- Exported cells starting with ``= + - @``, a tab or a carriage return are prefixed with ``'`` (no formula runs when
  the list is opened in a spreadsheet).
"""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass

from .errors import InvalidInput, TooLarge
from .staff_rules import Directory, check_account, clean

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 5000
MAX_UNPACKED = 100 * 1024 * 1024
MAX_COLUMNS = 30
HEADERS = {"登录名": "username", "姓名": "display_name", "角色": "roles", "部门": "department", "服务站": "station",
           "手机": "phone", "邮箱": "email"}
REQUIRED = ("登录名", "姓名", "角色")
HEADER_ALIASES = {"账号": "登录名", "用户名": "登录名", "手机号": "手机", "电话": "手机", "电子邮箱": "邮箱", "所属部门": "部门"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class StaffFile:
    """The lines of a staff file as read: format, encoding, and for each line its number and cells by field."""

    format: str                      # CSV / XLSX
    encoding: str | None             # what a CSV was read as
    lines: list[tuple[int, dict]]

    def describe(self) -> str:
        return f"{self.format} 文件" + (f"，按 {self.encoding} 编码读取" if self.encoding else "")


def read_staff_file(data: bytes, filename: str = "") -> StaffFile:
    """The staff lines of an uploaded file (header on the first line). Refuses (Chinese) a file over the limits, in an
    unknown encoding, or without the required columns."""
    if len(data) > MAX_BYTES:
        raise TooLarge(f"文件超过 {MAX_BYTES // (1024 * 1024)} MB 上限，请分成几个文件导入")
    if not data.strip():
        raise InvalidInput("文件是空的")
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith((".xlsx", ".xlsm")):
        return StaffFile("XLSX", None, _lines(_xlsx_rows(data)))
    text, encoding = decode_text(data)
    try:
        rows = list(_csv_rows(text))
    except csv.Error:
        raise InvalidInput("CSV 文件格式有误，请检查引号是否成对、有无多余的引号") from None
    return StaffFile("CSV", encoding, _lines(rows))


def decode_text(data: bytes) -> tuple[str, str]:
    """The text of a CSV: UTF-8 (with or without BOM) strictly, else GB18030/GBK; which encoding was read."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "UTF-8（带 BOM）"
        except UnicodeDecodeError:
            raise InvalidInput("文件以 UTF-8 标记开头，但内容不是有效的 UTF-8 文本，请重新另存为 UTF-8 编码的 CSV") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInput("文件是 UTF-16 编码，无法读取：请在表格软件中另存为“CSV UTF-8”或 XLSX 后重试")
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "GBK/GB18030"
    except UnicodeDecodeError:
        raise InvalidInput("无法识别文件的编码：既不是 UTF-8 也不是 GBK/GB18030。请在表格软件中另存为“CSV UTF-8”或 "
                           "XLSX 后重试") from None


def _csv_rows(text: str):
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    for count, row in enumerate(reader, start=1):
        if count > MAX_ROWS + 1:
            raise TooLarge(f"文件超过 {MAX_ROWS} 行的上限，请分成几个文件导入")
        yield row[:MAX_COLUMNS]


def _xlsx_rows(data: bytes) -> list[list]:
    from openpyxl import load_workbook
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(i.file_size for i in archive.infolist())
    except zipfile.BadZipFile:
        raise InvalidInput("文件不是有效的 XLSX 表格（可能已损坏，或只是改了扩展名）") from None
    if unpacked > MAX_UNPACKED:
        raise TooLarge(f"表格解压后超过 {MAX_UNPACKED // (1024 * 1024)} MB，请删去多余的工作表或内容后重试")
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:      # openpyxl raises many kinds for a damaged or foreign archive
        raise InvalidInput("文件不是有效的 XLSX 表格（可能已损坏，或是旧的 XLS 格式：请另存为 XLSX）") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise InvalidInput("表格中没有工作表")
        rows = []
        for row in sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True):
            if len(rows) > MAX_ROWS + 1:
                raise TooLarge(f"文件超过 {MAX_ROWS} 行的上限，请分成几个文件导入")
            rows.append(list(row))
        return rows
    finally:
        book.close()


def _lines(rows) -> list[tuple[int, dict]]:
    """Map each line's cells to fields by the header (line 1); blank lines are skipped but keep their numbers."""
    rows = list(rows)
    if not rows:
        raise InvalidInput("文件是空的")
    header = [clean(h).lstrip("\ufeff") for h in rows[0]]
    columns: dict[int, str] = {}
    problems = []
    for i, name in enumerate(header):
        if not name:
            continue
        name = HEADER_ALIASES.get(name, name)
        if name not in HEADERS:
            problems.append(f"第 1 行：未知的列「{name[:20]}」（可用的列：{'、'.join(HEADERS)}）")
        elif HEADERS[name] in columns.values():
            problems.append(f"第 1 行：列「{name}」重复")
        else:
            columns[i] = HEADERS[name]
    missing = [h for h in REQUIRED if HEADERS[h] not in columns.values()]
    if missing:
        problems.append(f"第 1 行：缺少必需的列「{'、'.join(missing)}」（表头须为：{'、'.join(HEADERS)}）")
    if problems:
        raise InvalidInput("表头有误，未导入任何账号", details=problems)
    out = []
    for number, row in enumerate(rows[1:], start=2):
        cells = {field: row[i] if i < len(row) else None for i, field in columns.items()}
        if all(clean(v) == "" for v in cells.values()):
            continue
        out.append((number, cells))
    if len(out) > MAX_ROWS:
        raise TooLarge(f"文件超过 {MAX_ROWS} 行的上限，请分成几个文件导入")
    if not out:
        raise InvalidInput("文件中只有表头，没有要导入的账号")
    return out


def check_lines(staff: StaffFile, directory: Directory, existing_logins: set[str]) -> tuple[list[dict], list[str]]:
    """Every line checked: the accounts to create, and each bad line as 「第 N 行：原因」 (duplicate logins within the
    file or with the database, unknown roles/departments/stations, missing names, bad phones, control characters)."""
    accounts, problems = [], []
    seen: dict[str, int] = {}
    for number, cells in staff.lines:
        account, found = check_account(cells, directory)
        login = account.get("username") or ""
        key = login.lower()
        if login and key in seen:
            found.append(f"登录名「{login}」与第 {seen[key]} 行重复")
        elif login and key in existing_logins:
            found.append(f"登录名「{login}」已存在")
        if login:
            seen.setdefault(key, number)
        problems.extend(f"第 {number} 行：{p}" for p in found)
        account["line"] = number
        accounts.append(account)
    return accounts, problems


def logins_of(staff: StaffFile) -> list[str]:
    return [clean(cells.get("username")) for _, cells in staff.lines if clean(cells.get("username"))]


# ---- the list of one-time passwords, as a file ----------------------------------------------------------------------
def safe_cell(value) -> str:
    """A cell a spreadsheet shows as text: never a formula (``=cmd|' /C calc'!A0`` becomes ``'=cmd|...``)."""
    text = "" if value is None else str(value)
    text = "".join(ch if ch.isprintable() or ch in "\t\r" else " " for ch in text)
    return "'" + text if text.startswith(FORMULA_START) else text


CREDENTIAL_HEADER = ["登录名", "姓名", "一次性密码"]


def credentials_csv(rows: list[dict]) -> bytes:
    """The logins with their one-time passwords as CSV (UTF-8 with BOM, which spreadsheets open correctly)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CREDENTIAL_HEADER)
    for r in rows:
        writer.writerow([safe_cell(r.get("username")), safe_cell(r.get("display_name")), safe_cell(r.get("password"))])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def credentials_xlsx(rows: list[dict]) -> bytes:
    """The same list as an XLSX workbook (every cell a string, never a formula)."""
    from openpyxl import Workbook
    book = Workbook(write_only=True)
    sheet = book.create_sheet("一次性密码")
    sheet.append(CREDENTIAL_HEADER)
    for r in rows:
        sheet.append([safe_cell(r.get("username")), safe_cell(r.get("display_name")), safe_cell(r.get("password"))])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
