"""Case search through an index that does not scan (a mixin of :class:`engine.repository.Repository`).

One search row per case, written in the same transaction as the step that creates the case (:meth:`index_case`),
holding its searchable text: case number, unit name, the unit's credit code, project name (the case title).

- SQLite: ``case_search`` is an FTS5 table with the trigram tokenizer (rowid = case id; SQLite 3.34+). A term of
  three or more characters is a trigram phrase; a two-character term is the OR of the index's own trigrams that
  begin with it, read from the ``case_search_terms`` vocabulary table by a range (each field ends with two spaces,
  so a two-character term at a field's end has a trigram too).
- PostgreSQL: ``case_search`` is a table with the lower-cased text (``body``, GIN ``pg_trgm`` index: ``LIKE``
  of three or more characters) and its two-character pieces (``grams``, a GIN array index: ``@>`` for a
  two-character term). Without pg_trgm (the extension could not be created) the ``body`` search scans.

A query is split on whitespace; every term must match (AND). A one-character term is refused by the use case.
Counts stop at ``COUNT_CAP`` rows: more shows as 「1000+」.
"""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import Column, Integer, MetaData, Table, Text, bindparam, column, func, or_, select, table, text
from sqlalchemy.dialects.postgresql import ARRAY

from .models import Case, Unit

cases, units = Case.__table__, Unit.__table__
COUNT_CAP = 1000          # counted up to COUNT_CAP + 1 rows: beyond, the total shows as 「1000+」
WINDOW = 6                # a longer term is looked up by its last WINDOW characters, then checked whole (SQLite)
SMALL_SCOPE = 2000        # an actor seeing at most this many cases searches them directly (bounded LIKE)
MAX_SHORT_TERMS = 400     # trigrams a two-character term may expand to (SQLite)
END = "  "                # ends each field (SQLite): a two-character term at a field's end still has a trigram

# PostgreSQL's search table (SQLite's is an FTS5 virtual table, created by the migration)
pg_search = Table("case_search", MetaData(), Column("case_id", Integer, primary_key=True),
                  Column("case_no", Text), Column("unit_text", Text), Column("title", Text), Column("body", Text),
                  Column("grams", ARRAY(Text)))
# SQLite's FTS5 table, as far as queries name it
fts_search = table("case_search", column("rowid"), *(column(c, Text) for c in ("case_no", "unit_name", "credit_code", "title")))


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


def search_values(case_no: str, unit_name: str | None, credit_code: str | None, title: str | None) -> dict:
    """The PostgreSQL search row of a case (lower-cased text and its distinct two-character pieces)."""
    fields = [_clean(case_no).lower(), f"{_clean(unit_name)} {_clean(credit_code)}".strip().lower(), _clean(title).lower()]
    grams = sorted({f[i:i + 2] for f in fields for i in range(len(f) - 1) if " " not in f[i:i + 2]})
    return {"case_no": fields[0], "unit_text": fields[1], "title": fields[2], "body": " | ".join(fields), "grams": grams}


# Written once (a Core ``on_conflict_do_update`` is compiled again at every execution: SQLAlchemy does not cache it).
_PG_UPSERT = text("INSERT INTO case_search (case_id, case_no, unit_text, title, body, grams) "
                  "VALUES (:case_id, :case_no, :unit_text, :title, :body, :grams) "
                  "ON CONFLICT (case_id) DO UPDATE SET case_no = excluded.case_no, unit_text = excluded.unit_text, "
                  "title = excluded.title, body = excluded.body, grams = excluded.grams"
                  ).bindparams(bindparam("grams", type_=ARRAY(Text)))
_FTS_DELETE = text("DELETE FROM case_search WHERE rowid = :id")
_FTS_INSERT = text("INSERT INTO case_search (rowid, case_no, unit_name, credit_code, title) "
                   "VALUES (:id, :no, :unit, :code, :title)")


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


class SearchRepository:
    conn: object
    dialect: str

    # ---- writing the index (in the step's transaction) ----------------------------------------------------
    def index_case(self, case_id: int, case_no: str, unit_name: str | None, credit_code: str | None,
                   title: str | None) -> None:
        """Write (or rewrite) the search row of a case."""
        self.index_cases([{"case_id": case_id, "case_no": case_no, "unit_name": unit_name, "credit_code": credit_code,
                           "title": title}])

    def index_cases(self, rows: list[dict]) -> None:
        """Write (or rewrite) the search rows of cases (case_id, case_no, unit_name, credit_code, title)."""
        if not rows:
            return
        if self.dialect == "postgresql":
            values = [dict(case_id=r["case_id"], **search_values(r["case_no"], r["unit_name"], r["credit_code"], r["title"]))
                      for r in rows]
            self.conn.execute(_PG_UPSERT, values)
            return
        self.conn.execute(_FTS_DELETE, [{"id": r["case_id"]} for r in rows])
        self.conn.execute(_FTS_INSERT,
                          [{"id": r["case_id"], "no": _clean(r["case_no"]) + END, "unit": _clean(r["unit_name"]) + END,
                            "code": _clean(r["credit_code"]) + END, "title": _clean(r["title"]) + END} for r in rows])

    def index_cases_of_unit(self, unit_id: int) -> None:
        """Rewrite the search rows of a unit's cases (after its name or credit code changed)."""
        rows = self.conn.execute(select(cases.c.id, cases.c.case_no, cases.c.title, units.c.name, units.c.credit_code)
                                 .join(units, units.c.id == cases.c.unit_id).where(cases.c.unit_id == unit_id)).all()
        for r in rows:
            self.index_case(r.id, r.case_no, r.name, r.credit_code, r.title)

    def search_index_size(self) -> int:
        return self.conn.execute(text("SELECT count(*) FROM case_search")).scalar_one()

    # ---- reading ------------------------------------------------------------------------------------------
    def _sqlite_short(self, term: str) -> list[str]:
        """The index's trigrams that begin with a two-character term."""
        rows = self.conn.execute(text("SELECT term FROM case_search_terms WHERE term >= :lo AND term < :hi LIMIT :n"),
                                 {"lo": term, "hi": term + "\U0010ffff", "n": MAX_SHORT_TERMS + 1}).scalars().all()
        if len(rows) > MAX_SHORT_TERMS:
            from .errors import InvalidInput
            raise InvalidInput(f"查询词“{term}”太常见，请多输入几个字")
        return rows

    def _sqlite_match(self, groups: list[tuple[str, list[str]]]) -> tuple[str | None, list]:
        """An FTS5 query: every term (lower-cased) in one of its group's columns (None: nothing can match), and the
        checks of long terms on the matched rows. A term longer than ``WINDOW`` characters is looked up by its last
        ``WINDOW`` characters (a case number's region and date trigrams are in nearly every row; its day and
        sequence are not), then checked whole."""
        parts, rechecks = [], []
        for columns, terms in groups:
            prefix = "{" + " ".join(columns) + "} : " if columns else ""
            for term in terms:
                if len(term) > WINDOW:
                    parts.append(prefix + _phrase(term[-WINDOW:]))
                    targets = columns or ("case_no", "unit_name", "credit_code", "title")
                    rechecks.append(or_(*[func.lower(fts_search.c[c]).like(_like(term), escape="\\")
                                          for c in targets]))
                elif len(term) >= 3:
                    parts.append(prefix + _phrase(term))
                else:
                    grams = self._sqlite_short(term)
                    if not grams:
                        return None, []
                    parts.append(prefix + "(" + " OR ".join(_phrase(g) for g in grams) + ")")
        return " AND ".join(parts), rechecks

    def _pg_conditions(self, groups: list[tuple[str, list[str]]]) -> list:
        t = pg_search.c
        out = []
        for columns, terms in groups:
            targets = [t.body] if not columns else [{"case_no": t.case_no, "unit_name": t.unit_text,
                                                     "credit_code": t.unit_text, "title": t.title}[c] for c in columns]
            targets = list(dict.fromkeys(targets))
            for term in terms:
                if len(term) < 3:
                    out.append(t.grams.contains([term]))                   # the two-character index (exact)
                elif len(term) > WINDOW:                                   # the trigram index on its last characters,
                    out.append(t.body.like(_like(term[-WINDOW:]), escape="\\"))
                    out.append(func.strpos(t.body, term) > 0)              # then the whole term on those rows only
                else:
                    out.append(t.body.like(_like(term), escape="\\"))     # the trigram index
                if columns:
                    out.append(or_(*[c.like(_like(term), escape="\\") for c in targets]))
        return out

    def _scope_is_small(self, scope: dict, visible) -> bool:
        """Whether the actor sees at most ``SMALL_SCOPE`` cases (an applicant's unit, a clerk's submissions): counted
        through the scope's own indexes, stopping at the bound."""
        if scope.get("all"):
            return False
        stmt = visible(select(cases.c.id), scope).limit(SMALL_SCOPE + 1)
        return self.conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one() <= SMALL_SCOPE

    def _scope_conditions(self, groups) -> list:
        """The terms as LIKE conditions on the case row and its unit (the small-scope path)."""
        columns = {"case_no": cases.c.case_no, "unit_name": cases.c.unit_name, "credit_code": units.c.credit_code,
                   "title": cases.c.title}
        out = []
        for names, terms in groups:
            targets = [columns[n] for n in (names or columns)]
            for term in terms:
                out.append(or_(*[func.lower(c).like(_like(term), escape="\\") for c in targets]))
        return out

    def search_cases_indexed(self, scope: dict, groups: list[tuple[tuple[str, ...], list[str]]], status: str | None,
                             limit: int, offset: int, visible, columns: list) -> tuple[list, int, bool]:
        """Cases whose search row matches every term of ``groups`` ((columns, terms); no columns: any), newest
        first (by case id), in ``scope``; the total counted up to ``COUNT_CAP`` (then capped=True).

        When the actor sees few cases (:meth:`_scope_is_small`) they are read through the scope's index and the
        terms checked on those rows (a bounded LIKE); otherwise the search index drives, newest first, and stops
        at the page (and the count at its cap)."""
        if self._scope_is_small(scope, visible):
            base = select(*columns).select_from(cases.join(units, units.c.id == cases.c.unit_id))
            base = base.where(*self._scope_conditions(groups))
            order = cases.c.id.desc()
        elif self.dialect == "postgresql" and scope.get("all") and not status:
            # the search table alone finds the newest matches (and counts them up to the cap); cases are read for
            # the page only (a join would make the planner read every case to count)
            # first the capped count (bitmap scans); then the page: many matches are dense, so walking the search
            # table newest first meets a page soon; at most COUNT_CAP are read through the indexes and sorted
            found = select(pg_search.c.case_id).where(*self._pg_conditions(groups))
            total, capped = self.count_capped(found)
            if total == 0:
                return [], 0, False
            page = found.order_by(pg_search.c.case_id.desc()).limit(limit).offset(offset)
            with self._planner(*(("enable_bitmapscan",) if capped else ("enable_seqscan", "enable_indexscan"))):
                rows = self.conn.execute(select(*columns).where(cases.c.id.in_(page.scalar_subquery()))
                                         .order_by(cases.c.id.desc())).all()
            return rows, total, capped
        elif self.dialect == "postgresql":
            base = select(*columns).select_from(pg_search.join(cases, cases.c.id == pg_search.c.case_id))
            base = base.where(*self._pg_conditions(groups))
            order = pg_search.c.case_id.desc()
        else:
            match, rechecks = self._sqlite_match(groups)
            if match is None:
                return [], 0, False
            base = (select(*columns).select_from(fts_search.join(cases, cases.c.id == fts_search.c.rowid))
                    .where(text("case_search MATCH :match").bindparams(bindparam("match", match)), *rechecks))
            order = fts_search.c.rowid.desc()
        if status:
            base = base.where(cases.c.status == status)
        base = visible(base, scope).order_by(order)       # ordered in the count too: the same plan (index first)
        rows = self.conn.execute(base.limit(limit).offset(offset)).all()
        total, capped = self.count_capped(base)
        return rows, total, capped

    def count_capped(self, stmt) -> tuple[int, bool]:
        """How many rows ``stmt`` gives, counted up to ``COUNT_CAP`` + 1 (then capped=True). On PostgreSQL the count
        is read through the indexes (bitmap scans): a LIMIT makes the planner prefer a table scan that stops early,
        which for a common term reads thousands of rows, for a rare one the whole table."""
        counting = select(func.count()).select_from(stmt.limit(COUNT_CAP + 1).subquery())
        with self._planner("enable_seqscan", "enable_indexscan"):
            counted = self.conn.execute(counting).scalar_one()
        return min(counted, COUNT_CAP), counted > COUNT_CAP

    @contextmanager
    def _planner(self, *off: str):
        """PostgreSQL: these plan kinds off for the statements inside (``SET LOCAL``, back on after); else nothing."""
        if self.dialect != "postgresql":
            yield
            return
        self.conn.execute(text("; ".join(f"SET LOCAL {name} = off" for name in off)))
        try:
            yield
        finally:
            self.conn.execute(text("; ".join(f"SET LOCAL {name} = on" for name in off)))

