"""Compile a parsed search (``shipyard.store.query``) to one SQL query.

Filtering, ordering and paging happen in the database. Each metric, param or
tag a query names becomes one join on its table keyed by (run_id, key); the
join is INNER when the field sits in a top-level ``and`` of plain comparisons
(so the planner can drive the query from the ``(key, value)`` index) and LEFT
OUTER otherwise (``or``, ``not``, ``is null``, order-only fields).

On PostgreSQL that holds up to :data:`FREE_JOINS` keys; past it, one join per key does not scale
(the planner searches join orders: 0.5 s to plan 50 keys over 16 runs, 109 s for 300). So there a
search naming more keys reads each table once, pivoted (one grouped scan of the named keys per
table: ``max(CASE WHEN key = 'k' THEN value END)``), and hash-joins those at most three pivots to
the runs. Every PostgreSQL search that names keys turns nested loops off (hash joins): planned on
stale statistics, nested loops rescan an index once per run. SQLite plans joins greedily and stays
fast with joins (pivots are slower there), up to its 64-table limit: a search names at most
``query.MAX_KEYS`` keys (filter and order_by together). The engine's ``statement_timeout`` bounds
whatever is left. Both forms give the same answers (a test compares them).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql.expression import nulls_last

from shipyard.bounds import INT64_MAX
from shipyard.entities import Run, RunPage, RunStatus, RunView
from shipyard.errors import InvalidInput
from shipyard.store.query import (
    MAX_KEYS,
    And,
    Comparison,
    Expr,
    Field,
    Not,
    Or,
    OrderKey,
    parse_field,
    parse_filter,
    parse_order_by,
)
from shipyard.store.sql import schema as t

__all__ = ["FREE_JOINS", "MAX_RESULTS", "SearchQuery", "load_runs"]

MAX_RESULTS = 50_000
FREE_JOINS = 8
"""Most keys PostgreSQL gets as one join each (it plans up to 8 joins exhaustively and quickly)."""
_MAX_TOKEN_CHARS = 200

_ATTRIBUTE_COLUMNS = {
    "run_id": t.runs.c.id,
    "run_name": t.runs.c.name,
    "status": t.runs.c.status,
    "start_time": t.runs.c.start_time,
    "end_time": t.runs.c.end_time,
    "user": t.runs.c.user,
    "experiment_id": t.runs.c.experiment_id,
    "parent_run_id": t.runs.c.parent_run_id,
    "source": t.runs.c.source,
}
_TABLES = {"metrics": t.latest_metrics, "params": t.params, "tags": t.tags}


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str) -> int:
    """The offset a page token holds; anything else is ``InvalidInput`` (never a crash)."""
    offset: Any = None
    if isinstance(token, str) and len(token) <= _MAX_TOKEN_CHARS:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
            offset = data.get("offset") if isinstance(data, dict) else None
        except (ValueError, TypeError, binascii.Error, RecursionError):
            offset = None
    if offset.__class__ is not int or not 0 <= offset <= INT64_MAX:
        shown = repr(token)[:60]
        raise InvalidInput(f"Invalid page token {shown}; pass the next_page_token of the previous page")
    return int(offset)


def _inner_fields(expr: Expr | None) -> set[Field]:
    items: tuple[Expr, ...] = ()
    if isinstance(expr, And):
        items = expr.items
    elif expr is not None:
        items = (expr,)
    return {
        e.field
        for e in items
        if isinstance(e, Comparison)
        and e.field.kind != "attributes"
        and e.op not in ("is null", "is not null")
    }


def _all_fields(expr: Expr | None) -> list[Field]:
    if expr is None:
        return []
    if isinstance(expr, Comparison):
        return [expr.field] if expr.field.kind != "attributes" else []
    if isinstance(expr, Not):
        return _all_fields(expr.item)
    return [f for item in expr.items for f in _all_fields(item)]


class _Cols(NamedTuple):
    """Where a field's value is read in the compiled query (a join's columns or a pivot's)."""

    value: Any
    num: Any  # the numeric value (params and tags keep one beside the text; metrics are numbers)
    present: Any  # non-null exactly when the run has the key


@dataclass
class SearchQuery:
    experiment_ids: list[int] | None
    expr: Expr | None
    order: list[OrderKey]
    limit: int
    offset: int
    columns: list[Field] | None
    view: RunView = RunView.ACTIVE

    @classmethod
    def build(
        cls,
        experiment_ids: Sequence[int] | None,
        filter: str | None,
        order_by: Sequence[str] | None,
        limit: int,
        page_token: str | None,
        columns: Sequence[str] | None,
        view: RunView | str = RunView.ACTIVE,
    ) -> SearchQuery:
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_RESULTS:
            raise InvalidInput(f"limit must be an integer from 1 to {MAX_RESULTS}, got {limit!r}")
        if isinstance(order_by, str):
            order_by = [order_by]
        query = cls(
            experiment_ids=None if experiment_ids is None else [int(e) for e in experiment_ids],
            expr=parse_filter(filter),
            order=parse_order_by(order_by),
            limit=limit,
            offset=_decode_token(page_token) if page_token else 0,
            columns=None if columns is None else [parse_field(c) for c in columns],
            view=RunView.parse(view),
        )
        keys = len(query._fields())
        if keys > MAX_KEYS:
            raise InvalidInput(
                f"The search names {keys} distinct metric, param and tag keys in its filter and "
                f"order_by; a search takes at most {MAX_KEYS}. Filter on fewer keys."
            )
        return query

    # -- compilation --------------------------------------------------------------------------
    def _fields(self) -> list[Field]:
        """The distinct metric/param/tag fields the filter and order_by name, inner-join ones first."""
        inner = _inner_fields(self.expr)
        named = _all_fields(self.expr) + [k.field for k in self.order if k.field.kind != "attributes"]
        return sorted(dict.fromkeys(named), key=lambda f: f not in inner)

    def pivoted(self, dialect: str) -> bool:
        """Whether this search reads pivots (PostgreSQL, past :data:`FREE_JOINS` keys) or joins."""
        return dialect == "postgresql" and len(self._fields()) > FREE_JOINS

    def _sources(self, pivot: bool) -> tuple[Any, dict[Field, _Cols]]:
        """The FROM clause and, per field, its value, numeric value and presence columns.

        Joins: one per field (INNER where the filter requires the key, so the planner can start from
        the ``(key, value)`` index). Pivots: one per table (a single grouped scan of the named keys),
        so the query has at most three joins whatever the key count.
        """
        fields, inner = self._fields(), _inner_fields(self.expr)
        source: Any = t.runs
        cols: dict[Field, _Cols] = {}
        if not pivot:
            for i, f in enumerate(fields):
                alias = _TABLES[f.kind].alias(f"j{i}")
                on = and_(alias.c.run_id == t.runs.c.id, alias.c.key == f.key)
                source = source.join(alias, on, isouter=f not in inner)
                num = alias.c.value if f.kind == "metrics" else alias.c.value_num
                cols[f] = _Cols(alias.c.value, num, alias.c.run_id)
            return source, cols
        for kind, table in _TABLES.items():
            named = [f for f in fields if f.kind == kind]
            if not named:
                continue
            parts: list[Any] = [table.c.run_id]
            for i, f in enumerate(named):
                is_key = table.c.key == f.key
                num = table.c.value if kind == "metrics" else table.c.value_num
                parts += [
                    func.max(case((is_key, table.c.value))).label(f"v{i}"),
                    func.max(case((is_key, num))).label(f"n{i}"),
                    func.max(case((is_key, 1))).label(f"h{i}"),
                ]
            keys = [f.key for f in named]
            pv = select(*parts).where(table.c.key.in_(keys)).group_by(table.c.run_id).subquery(f"p_{kind}")
            source = source.join(pv, pv.c.run_id == t.runs.c.id, isouter=True)
            for i, f in enumerate(named):
                cols[f] = _Cols(pv.c[f"v{i}"], pv.c[f"n{i}"], pv.c[f"h{i}"])
        return source, cols

    def _column(self, f: Field, cols: dict[Field, _Cols], numeric: bool) -> Any:
        if f.kind == "attributes":
            return _ATTRIBUTE_COLUMNS[f.key]
        return cols[f].num if numeric else cols[f].value

    def _compile(self, e: Expr, cols: dict[Field, _Cols]) -> ColumnElement[bool]:
        if isinstance(e, And):
            return and_(*(self._compile(i, cols) for i in e.items))
        if isinstance(e, Or):
            return or_(*(self._compile(i, cols) for i in e.items))
        if isinstance(e, Not):
            return not_(self._compile(e.item, cols))
        return self._compare(e, cols)

    def _compare(self, c: Comparison, cols: dict[Field, _Cols]) -> ColumnElement[bool]:
        if c.op in ("is null", "is not null"):
            col = _ATTRIBUTE_COLUMNS[c.field.key] if c.field.kind == "attributes" else cols[c.field].present
            return col.is_(None) if c.op == "is null" else col.is_not(None)
        sample = c.value[0] if isinstance(c.value, tuple) else c.value
        numeric = isinstance(sample, (int, float))
        col = self._column(c.field, cols, numeric)
        value = c.value
        if c.field.kind == "attributes" and c.field.key == "status" and isinstance(value, str):
            value = RunStatus(value).value
        ops: dict[str, Any] = {
            "=": lambda: col == value,
            "!=": lambda: col != value,
            "<": lambda: col < value,
            "<=": lambda: col <= value,
            ">": lambda: col > value,
            ">=": lambda: col >= value,
            "like": lambda: col.like(value),
            "ilike": lambda: col.ilike(value),
            "in": lambda: col.in_(list(value)),  # type: ignore[arg-type]
            "not in": lambda: col.not_in(list(value)),  # type: ignore[arg-type]
        }
        return ops[c.op]()  # type: ignore[no-any-return]

    def _order_clauses(self, cols: dict[Field, _Cols]) -> list[Any]:
        clauses: list[Any] = []
        for k in self.order:
            order_cols = [self._column(k.field, cols, numeric=False)]
            if k.field.kind in ("params", "tags"):
                order_cols.insert(0, self._column(k.field, cols, numeric=True))
            clauses.extend(nulls_last(c.desc() if k.descending else c.asc()) for c in order_cols)
        clauses.extend([t.runs.c.start_time.desc(), t.runs.c.id.asc()])
        return clauses

    def statement(self, pivot: bool = False) -> Select[Any]:
        source, cols = self._sources(pivot)
        stmt = select(t.runs.c.id).select_from(source)
        if self.view is not RunView.ALL:
            stmt = stmt.where(t.runs.c.deleted == (true() if self.view is RunView.DELETED else false()))
        if self.experiment_ids is not None:
            stmt = stmt.where(t.runs.c.experiment_id.in_(self.experiment_ids))
        if self.expr is not None:
            stmt = stmt.where(self._compile(self.expr, cols))
        return stmt.order_by(*self._order_clauses(cols)).limit(self.limit + 1).offset(self.offset)

    def execute(self, conn: Connection) -> RunPage:
        pivot = self.pivoted(conn.dialect.name)
        if conn.dialect.name == "postgresql" and self._fields():
            # Hash joins for any search that joins key tables. Pivots: a few set-sized sets, and row
            # estimates after many filters say "1 row". Joins: on tables whose statistics are stale
            # (just loaded, or autovacuum off) every estimate says "1 row" and the planner nests loops
            # that rescan the (key, value) index once per run: 130 ms instead of 1.5 ms for a
            # two-key filter over 1,000 runs (bench/bench_team.py's search).
            conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
        if conn.dialect.name == "postgresql":  # the page and its runs whole in one statement
            cols, kinds = _run_columns(self.columns)
            rows = conn.execute(self.statement(pivot).add_columns(*cols)).all()
            page = [_whole_run(r, kinds) for r in rows[: self.limit]]
            token = _encode_token(self.offset + self.limit) if len(rows) > self.limit else None
            return RunPage(page, token)
        ids = list(conn.execute(self.statement(pivot)).scalars())
        more = len(ids) > self.limit
        ids = ids[: self.limit]
        token = _encode_token(self.offset + self.limit) if more else None
        return RunPage(load_runs(conn, ids, self.columns), token)


def _keys_for(columns: list[Field] | None, kind: str) -> list[str] | None:
    if columns is None:
        return None
    return [c.key for c in columns if c.kind == kind]


def _among(column: Any, ids: list[str], dialect: str) -> ColumnElement[bool]:
    """``column IN ids``; on PostgreSQL ``column = ANY(:ids)``, one array parameter: a short statement
    psycopg prepares once, not one placeholder per id rendered and parsed on every page."""
    among: ColumnElement[bool]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY  # only on PostgreSQL: SQLite runs never load it

        among = column == any_(bindparam("ids", ids, type_=ARRAY(String)))
    else:
        among = column.in_(ids)
    return among


def _run_of(r: Any) -> Run:
    return Run(
        id=r.id,
        experiment_id=r.experiment_id,
        experiment_name=r.experiment_name,
        name=r.name,
        status=RunStatus(r.status),
        start_time=r.start_time,
        end_time=r.end_time,
        parent_run_id=r.parent_run_id,
        user=r.user,
        source=r.source,
        deleted=bool(r.deleted),
    )


def load_runs(conn: Connection, ids: Sequence[str], columns: list[Field] | None) -> list[Run]:
    """Load runs with their params, latest metrics and tags, in the order of ``ids``.

    On PostgreSQL one statement: each run's keys and values per table aggregated into two arrays
    (a lateral read of the table's ``(run_id, key)`` index per run), so a page is one round trip
    and one row per run. Elsewhere four statements whatever the number of runs: the runs, then one
    per table (never one per run).
    """
    if not ids:
        return []
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return _load_runs_aggregated(conn, list(ids), columns)
    rows = conn.execute(
        select(t.runs, t.experiments.c.name.label("experiment_name"))
        .join(t.experiments, t.experiments.c.id == t.runs.c.experiment_id)
        .where(_among(t.runs.c.id, list(ids), dialect))
    ).all()
    runs = {r.id: _run_of(r) for r in rows}
    found = list(runs)
    for kind, table in _TABLES.items():
        keys = _keys_for(columns, kind)
        if keys == [] or not found:
            continue
        stmt = select(table.c.run_id, table.c.key, table.c.value)
        stmt = stmt.where(_among(table.c.run_id, found, dialect))
        if keys is not None:
            stmt = stmt.where(table.c.key.in_(keys))
        nan_for_null = kind == "metrics"
        for run_id, key, value in conn.execute(stmt).all():  # fetchall: cheaper than row by row
            target: dict[str, Any] = getattr(runs[run_id], kind)
            target[key] = float("nan") if (nan_for_null and value is None) else value
    return [runs[i] for i in ids if i in runs]


def _run_columns(columns: list[Field] | None) -> tuple[list[Any], list[str]]:
    """PostgreSQL: the columns that make a run whole next to ``runs.id`` (its other columns, its
    experiment's name, and per table its keys and values as one JSON object), and those tables.

    Subqueries, not joins: PostgreSQL evaluates a select list's subqueries after ``ORDER BY …
    LIMIT`` (only for the page's runs, each a read of the table's ``(run_id, key)`` index), and a
    search that turns nested loops off (see the module's docstring) leaves them alone.
    """
    from sqlalchemy.dialects.postgresql import ARRAY

    runs = t.runs.c
    experiment = select(t.experiments.c.name).where(t.experiments.c.id == runs.experiment_id)
    cols: list[Any] = [c for c in t.runs.c if c.name != "id"]
    cols.append(experiment.scalar_subquery().label("experiment_name"))
    kinds = []
    for kind, table in _TABLES.items():
        keys = _keys_for(columns, kind)
        if keys == []:
            continue
        value = table.c.value if kind != "metrics" else cast(table.c.value, Text)  # JSON loses -0.0
        # As text, read with orjson (keys and values are all strings): the JSON type's json.loads
        # was a tenth of a 100-run search's CPU.
        values = select(cast(func.json_object_agg(table.c.key, value), Text))
        values = values.where(table.c.run_id == runs.id)
        if keys is not None:
            values = values.where(table.c.key == any_(bindparam(f"{kind}_keys", keys, type_=ARRAY(String))))
        cols.append(values.scalar_subquery().label(kind))
        kinds.append(kind)
    return cols, kinds


def _whole_run(r: Any, kinds: list[str]) -> Run:
    """A run from a row with :func:`_run_columns`."""
    run = _run_of(r)
    for kind in kinds:
        raw: str | None = getattr(r, kind)
        if raw is None:  # no rows: the aggregate of nothing is NULL
            continue
        found: dict[str, Any] = orjson.loads(raw)
        if kind == "metrics":  # as text ("-0", "Infinity", shortest exact digits); NaN is stored as NULL
            found = {k: float("nan") if v is None else float(v) for k, v in found.items()}
        setattr(run, kind, found)
    return run


def _load_runs_aggregated(conn: Connection, ids: list[str], columns: list[Field] | None) -> list[Run]:
    """:func:`load_runs` on PostgreSQL: one statement, one row per run."""
    cols, kinds = _run_columns(columns)
    stmt = select(t.runs.c.id, *cols).where(_among(t.runs.c.id, ids, "postgresql"))
    runs = {r.id: _whole_run(r, kinds) for r in conn.execute(stmt).all()}
    return [runs[i] for i in ids if i in runs]
