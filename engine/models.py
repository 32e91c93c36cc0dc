"""Database schema (SQLAlchemy 2.x declarative). Queries live in :mod:`engine.repository`.

Over 400 lines because it is the one list of every table: a newcomer reads the whole schema in one file.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Unit(Base):
    """An applicant unit (项目单位 / 企业)."""

    __tablename__ = "units"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))      # unique among units not rejected (a rejected one may register again)
    credit_code: Mapped[str | None] = mapped_column(String(18))
    address: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(6))
    leader_name: Mapped[str | None] = mapped_column(String(30))
    leader_phone: Mapped[str | None] = mapped_column(String(20))
    # registration online (issue 13): pending → approved / rejected by the 综合窗口, with the reason
    status: Mapped[str] = mapped_column(String(16), default="approved", server_default="approved")
    legal_representative: Mapped[str | None] = mapped_column(String(30))
    contact_name: Mapped[str | None] = mapped_column(String(30))
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ux_units_name_live", "name", unique=True, sqlite_where=sql_text("status <> 'rejected'"),
              postgresql_where=sql_text("status <> 'rejected'")),
        Index("ux_units_credit_code_live", "credit_code", unique=True, sqlite_where=sql_text("status <> 'rejected'"),
              postgresql_where=sql_text("status <> 'rejected'")),
        Index("ix_units_status", "status", "registered_at"),
    )


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(64))
    roles: Mapped[str] = mapped_column(String(200))  # comma-separated role codes
    department: Mapped[str | None] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # going live (issue 13)
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(120))
    station: Mapped[str | None] = mapped_column(String(32))          # code of the 服务站 a station clerk works at
    unit_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # manages its unit's handlers
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProcessVersion(Base):
    """A set of process files, stored once, identified by its content hash."""

    __tablename__ = "process_versions"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    files: Mapped[dict] = mapped_column(JSON)  # {relative path: text}
    author: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    activated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Case(Base):
    """A 办件. ``state`` is the SpiffWorkflow state without its spec (JSON text)."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    case_no: Mapped[str] = mapped_column(String(32), unique=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    process_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    unit_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(32))
    lead_user: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    row_version: Mapped[int] = mapped_column(Integer, default=1)
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(Text)
    case_vars: Mapped[dict] = mapped_column(JSON)
    due_date: Mapped[date | None] = mapped_column(Date)       # the latest due date of its running clocks
    warning: Mapped[str | None] = mapped_column(String(8))    # the worst level of its running clocks
    # the value of the field the manifest's ``duplicate_check`` names (项目编号): finds possible duplicate applications
    project_code: Mapped[str | None] = mapped_column(String(50))

    __table_args__ = (
        Index("ix_cases_unit_created", "unit_id", "created_at"),
        Index("ix_cases_status_created", "status", "created_at"),
        Index("ix_cases_created", "created_at"),
        Index("ix_cases_warning", "warning", "due_date"),
        Index("ix_cases_created_by", "created_by", "created_at"),   # sees_cases "submitted" (station clerks)
        Index("ix_cases_project_code", "project_code", "status"),
    )


# case_search: one search row per case (case number, unit name, credit code, project name), written with the case
# in the intake's transaction. Its form differs per database (SQLite: an FTS5 trigram virtual table and its
# fts5vocab table; PostgreSQL: a table with pg_trgm and two-character GIN indexes), so it is created by migration
# 20261201_0014_search and described in engine/repository_search.py rather than here.


class InboxTask(Base):
    """A READY user task, projected from the workflow after every transition: lists query this table."""

    __tablename__ = "inbox"
    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    element_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(32))
    assignee: Mapped[str | None] = mapped_column(String(64))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    stage: Mapped[str | None] = mapped_column(String(32))
    form: Mapped[str] = mapped_column(String(100))
    clock_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the task's running clock, copied in the step's transaction (NULL: no clock, or paused/stopped): the inbox
    # sorts by urgency with an index — red when due_date < today, yellow when warn_at <= now, else green
    due_date: Mapped[date | None] = mapped_column(Date)
    warn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # "role|department|assignee" (empty for none; inboxq.audience_key): one access alternative of the task as one
    # non-NULL value, so that an equality on it lets both databases read the index in page order
    audience: Mapped[str | None] = mapped_column(String(140))

    __table_args__ = (
        Index("ix_inbox_case", "case_id"),
        Index("ix_inbox_role_dept", "role", "department", "created_at"),
        Index("ix_inbox_assignee", "assignee", "created_at"),
        # the inbox of an access alternative (and of an applicant's unit) in urgency order
        Index("ix_inbox_audience", "audience", "due_date", "created_at", "task_id"),
        Index("ix_inbox_unit_audience", "unit_id", "audience", "due_date", "created_at", "task_id"),
    )


class Event(Base):
    """Append-only event log of a case; each event's hash covers its content and the previous hash."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(32))
    task_id: Mapped[str | None] = mapped_column(String(36))
    element_id: Mapped[str | None] = mapped_column(String(64))
    task_name: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_events_case_seq"), Index("ix_events_task", "task_id"))


class Document(Base):
    """A numbered document (委托书, 办结单, 终止单, 评价表 ...) issued by a task."""

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issued_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    task_id: Mapped[str | None] = mapped_column(String(36))
    title: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (UniqueConstraint("kind", "number", name="uq_documents_kind_number"), Index("ix_documents_case", "case_id"))


class Counter(Base):
    """Gapless sequences: one row per kind and period (a day for case numbers, a year for documents)."""

    __tablename__ = "counters"
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class CaseParty(Base):
    """Who is involved in a case (``dept:<code>``, ``user:<username>``): scopes case lists of such roles."""

    __tablename__ = "case_parties"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    party: Mapped[str] = mapped_column(String(100), primary_key=True)

    __table_args__ = (Index("ix_case_parties_party", "party", "case_id"),)


class CalendarYear(Base):
    """An administrator's word on a year's holiday schedule: complete or still being entered."""

    __tablename__ = "calendar_years"
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str | None] = mapped_column(String(64))


class CalendarDay(Base):
    """A holiday (rest) or make-up working day (work) entered by an administrator; overrides the official data."""

    __tablename__ = "calendar_days"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(50), default="")


class CalendarChange(Base):
    """One day or year an administrator's action changed, append-only (``engine.calhistory``): before and after,
    who, when; the rows of one action share ``change_no``. ``baseline`` rows: the calendar when history began."""

    __tablename__ = "calendar_changes"
    seq: Mapped[int] = mapped_column(ID, primary_key=True)
    change_no: Mapped[int] = mapped_column(Integer, index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    by: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    since: Mapped[date | None] = mapped_column(Date)
    year: Mapped[int] = mapped_column(Integer)
    day: Mapped[date | None] = mapped_column(Date)
    kind_before: Mapped[str | None] = mapped_column(String(8))
    name_before: Mapped[str | None] = mapped_column(String(50))
    kind_after: Mapped[str | None] = mapped_column(String(8))
    name_after: Mapped[str | None] = mapped_column(String(50))
    complete_before: Mapped[bool | None] = mapped_column(Boolean)
    complete_after: Mapped[bool | None] = mapped_column(Boolean)


class Clock(Base):
    """A statutory clock (限时办结) of one service item of a case: its due date and warning level are columns,
    so supervision lists never read workflow state."""

    __tablename__ = "clocks"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    key: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(32))
    limit_days: Mapped[int] = mapped_column(Integer)
    extension_days: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pauses: Mapped[list] = mapped_column(JSON)       # [{"start": iso, "end": iso|None, "reason": str}]
    extensions: Mapped[list] = mapped_column(JSON)   # [{"days": n, "reason": str, "approved_by": str, "at": iso}]
    due_date: Mapped[date | None] = mapped_column(Date)
    yellow_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    red_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    level: Mapped[str] = mapped_column(String(8))    # green / yellow / red / paused / done / late
    warned: Mapped[list] = mapped_column(JSON, default=list)  # levels already announced by a BPMN timer
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stop_reason: Mapped[str | None] = mapped_column(String(200))   # stopped without a decision: why
    lead_user: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("case_id", "key", name="uq_clocks_case_key"),
        Index("ix_clocks_level_yellow", "level", "yellow_at"),
        Index("ix_clocks_yellow_open", "yellow_at", "stopped_at"),
        Index("ix_clocks_department_level", "department", "level"),
        Index("ix_clocks_provisional", "provisional"),
    )


class Timer(Base):
    """A waiting BPMN timer of a case, projected after every transition: the worker polls ``due_at``."""

    __tablename__ = "timers"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    task_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str | None] = mapped_column(String(100))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_timers_due", "due_at"), Index("ix_timers_case", "case_id"),
                      UniqueConstraint("task_id", name="uq_timers_task"))


class Notification(Base):
    """A message to a user or to every user of a department (``recipient`` = ``user:x`` / ``dept:y``)."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(100))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    text: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the outbox (issue 15): what kind of message, its subject and link, and the key that makes writing it twice a no-op
    kind: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(100))
    link: Mapped[str | None] = mapped_column(String(300))
    idem_key: Mapped[str | None] = mapped_column(String(120))

    __table_args__ = (Index("ix_notifications_recipient", "recipient", "created_at"),
                      Index("ux_notifications_idem_key", "idem_key", unique=True))


class Delivery(Base):
    """One notification to one user over one channel (``inapp``, ``email``, ``sms``, ``webhook``), written in the
    transaction of the notification. In-app rows are delivered when written and carry ``read_at``; the others are
    ``pending`` until the worker sends them (``sent``) or gives up after the configured attempts (``failed``)."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    channel: Mapped[str] = mapped_column(String(16))
    username: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(200))        # the e-mail address or phone number used
    status: Mapped[str] = mapped_column(String(16))                 # pending / sent / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))     # in Chinese, shown on the failures page
    idem_key: Mapped[str] = mapped_column(String(240))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("idem_key", name="uq_deliveries_idem_key"),
                      Index("ix_deliveries_due", "status", "next_attempt_at"),
                      Index("ix_deliveries_user", "username", "channel", "read_at"),
                      Index("ix_deliveries_case", "case_id", "id"),
                      Index("ix_deliveries_notification", "notification_id"))


class NotificationPref(Base):
    """The channels a user chose besides in-app (comma-separated; no row: in-app only)."""

    __tablename__ = "notification_prefs"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    channels: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DigestLeaf(Base):
    """One checkpoint of a case's event chain, appended by a digest when the chain's head moved since the case's last
    leaf: the leaves form an append-only Merkle tree (``engine.merkle``) whose signed roots are the digests."""

    __tablename__ = "digest_leaves"
    idx: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=False)   # 0-based position in the tree
    case_no: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)            # the case's last event at the digest
    head_hash: Mapped[str] = mapped_column(String(64))   # that event's hash

    __table_args__ = (Index("ix_digest_leaves_case", "case_no", "idx"),)


class Digest(Base):
    """A signed tree head (size, root, time, key) as it was also appended to the digest log file."""

    __tablename__ = "digests"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(32))
    line: Mapped[str] = mapped_column(Text)              # the signed head exactly as logged (JSON)

    __table_args__ = (Index("ix_digests_at", "at"),)


class Session(Base):
    """A login: the cookie carries a random token, the database its SHA-256. Checked on every request, so ending a
    session (logout, deactivation, password reset, idle timeout) takes effect at once on every server process."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)    # sha256 hex of the cookie's token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_reason: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_sessions_user", "user_id", "ended_at"),)


class LoginThrottle(Base):
    """Failed logins per account (``user:<login>``) and per address (``addr:<ip>``), shared by all server processes."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Department(Base):
    """A department that handles service items (the catalogue names them by code)."""

    __tablename__ = "departments"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    phone: Mapped[str | None] = mapped_column(String(30))             # the department's window phone
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Station(Base):
    """A 基层政务服务站: 乡镇（街道）便民服务中心 or 邮政网点, whose clerks submit applications for local units."""

    __tablename__ = "stations"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(32))                      # 乡镇（街道）便民服务中心 / 邮政网点
    phone: Mapped[str | None] = mapped_column(String(30))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class KeyDesignation(Base):
    """The register of key projects (县发展和改革委员会) and key enterprises (县科技和工业信息化局)."""

    __tablename__ = "key_register"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))                      # project / enterprise
    code: Mapped[str] = mapped_column(String(50))                      # 项目编号 or 统一社会信用代码
    name: Mapped[str] = mapped_column(String(100))
    document_no: Mapped[str] = mapped_column(String(100))              # 认定文件文号
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_key_register_code", "kind", "code"),)


class AdminChange(Base):
    """Every administrative change (accounts, roles, units, departments, stations, the key register): who, when,
    what, old → new. Append-only; the auditor reads it."""

    __tablename__ = "admin_log"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(64))                # login, or 命令行 for the CLI
    action: Mapped[str] = mapped_column(String(32))
    target_kind: Mapped[str] = mapped_column(String(32))               # user / unit / department / station / key
    target: Mapped[str] = mapped_column(String(100))
    old: Mapped[dict | None] = mapped_column(JSON)
    new: Mapped[dict | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_admin_log_target", "target_kind", "target"), Index("ix_admin_log_at", "at"))


class CaseFile(Base):
    """A material file attached to a case (issue 17): the bytes live content-addressed (SHA-256) in the file store
    (:mod:`engine.filestore`), written before this row; each upload of one (item, material) is a new version, the
    earlier ones kept. The upload is also an event in the case's hash chain, so ``audit verify`` sees a file
    changed or removed on disk."""

    __tablename__ = "case_files"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    item_code: Mapped[str] = mapped_column(String(32))
    material: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_seq: Mapped[int] = mapped_column(Integer)              # the file_uploaded event that recorded it

    __table_args__ = (UniqueConstraint("case_id", "item_code", "material", "version", name="uq_case_files_version"),
                      Index("ix_case_files_sha256", "sha256"))


class MaterialMark(Base):
    """What the 材料交接 checklist records for a material besides files (issue 17): received on paper, or not
    applicable with the reason. The latest mark of a material counts; each is an event in the case's chain."""

    __tablename__ = "material_marks"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    item_code: Mapped[str] = mapped_column(String(32))
    material: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))             # paper / not_applicable
    reason: Mapped[str | None] = mapped_column(String(500))
    marked_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_seq: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_material_marks_case", "case_id", "item_code", "material"),)


class FileDownload(Base):
    """Who fetched which case file when (issue 17): an append-only access log beside the case's chain (a read
    does not change the case). The file's hash is recorded with it."""

    __tablename__ = "file_downloads"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    file_id: Mapped[int] = mapped_column(ForeignKey("case_files.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    preview: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_file_downloads_case", "case_id", "id"),)
