"""SQL shared by both read stores; the dialects supply placeholders, types and transactions."""

from __future__ import annotations

import copy
import uuid
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import Tracking

from application.projections.codec import invoice_from_row
from application.projections.ports import Changes, ContractRow, DamagedRow, DeadlineRow, StalePosition
from domain.billing import Invoice

TRACKING_NAME = "contracts.read_models"  # key of the tracking row (distinct from process applications)
TABLES = ("rm_invoices", "rm_payments", "rm_claims", "rm_deadlines", "rm_contracts", "rm_event_times", "rm_damaged",
          "rm_transfers")
SHADOW = "rb_"  # table (and index) name prefix of the tables a rebuild fills beside the live ones
INVOICE_COLUMNS = ("invoice_id", "contract_id", "kind", "period", "month", "issued_on", "due_on", "total", "paid",
                   "outstanding", "refunded", "lines", "number", "document_type", "counterparty", "doc")
INVOICE_UPDATES = ", ".join(
    # an invoice loaded back from its row has no recipient: its counterparty index stays as it was
    # (the target's alias ``inv``: a rebuild's shadow table has another name)
    "counterparty = CASE WHEN excluded.counterparty = '' THEN inv.counterparty ELSE excluded.counterparty END"
    if c == "counterparty" else f"{c} = excluded.{c}" for c in INVOICE_COLUMNS[1:])


def invoice_values(r: Any, u: Any = lambda v: v, d: Any = lambda v: v) -> tuple[Any, ...]:
    """An ``InvoiceRow`` as parameters in ``INVOICE_COLUMNS`` order."""
    return (u(r.invoice_id), u(r.contract_id), r.kind, r.period, r.month, d(r.issued_on), d(r.due_on), r.total,
            r.paid, r.outstanding, r.refunded, r.lines, r.number, r.document_type, r.counterparty, r.doc)
ORDER = {  # primary keys: the order of dumps
    "rm_invoices": "invoice_id",
    "rm_payments": "position",
    "rm_claims": "claim_id",
    "rm_deadlines": "aggregate_id, kind, ref",
    "rm_contracts": "contract_id",
    "rm_event_times": "position",
    "rm_damaged": "position",
    "rm_transfers": "transfer_id",
}
# Secondary indexes no read of a rebuild uses (the projector reads states, invoices and their payments
# by key, erases counterparties by contract): a shadow gets them once it is full (``index_shadow``),
# one sorted build each instead of an entry per row inserted (issue 21)
DEFERRED_INDEXES = frozenset({
    "rm_invoices_month", "rm_invoices_issued", "rm_invoices_counterparty", "rm_invoices_number",
    "rm_payments_contract", "rm_claims_contract", "rm_deadlines_due", "rm_contracts_service",
    "rm_contracts_customer", "rm_event_times_originator", "rm_damaged_aggregate", "rm_transfers_status",
})
KEEP = -1  # ``_write(previous, KEEP)``: leave the tracking position as it is (a backfill)
CHUNK = 500


def ddl(t: dict[str, str], documents: bool = True) -> list[str]:
    """CREATE statements; ``t`` maps logical types (uuid, date, ts, big) to the dialect's, ``prefix``
    qualifies table names and ``ix`` prefixes index names (a rebuild's shadow tables). ``documents=False``
    leaves out the indexes of the issued-invoice columns (a live store adds missing columns first)."""
    u, d, ts, big = t["uuid"], t["date"], t["ts"], t["big"]
    t = {"ix": "", **t}
    n = t["prefix"]
    statements = [
        f"CREATE TABLE IF NOT EXISTS {n}rm_invoices (invoice_id {u} PRIMARY KEY, contract_id {u} NOT NULL, "
        f"kind TEXT NOT NULL, period TEXT NOT NULL, month TEXT NOT NULL, issued_on {d} NOT NULL, "
        f"due_on {d} NOT NULL, total {big} NOT NULL, paid {big} NOT NULL, outstanding {big} NOT NULL, "
        f"refunded {big} NOT NULL, lines TEXT NOT NULL, number TEXT NOT NULL, document_type TEXT NOT NULL, "
        f"counterparty TEXT NOT NULL, doc TEXT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS rm_invoices_contract ON {n}rm_invoices (contract_id, month)",
        f"CREATE INDEX IF NOT EXISTS rm_invoices_month ON {n}rm_invoices (month)",
        f"CREATE TABLE IF NOT EXISTS {n}rm_payments (position {big} PRIMARY KEY, invoice_id {u} NOT NULL, "
        f"contract_id {u} NOT NULL, paid_on {d} NOT NULL, amount {big} NOT NULL, "
        "kind TEXT NOT NULL DEFAULT 'transfer')",
        f"CREATE INDEX IF NOT EXISTS rm_payments_invoice ON {n}rm_payments (invoice_id, position)",
        f"CREATE INDEX IF NOT EXISTS rm_payments_contract ON {n}rm_payments (contract_id, position)",
        f"CREATE TABLE IF NOT EXISTS {n}rm_claims (claim_id {u} PRIMARY KEY, contract_id {u} NOT NULL, "
        f"status TEXT NOT NULL, doc TEXT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS rm_claims_contract ON {n}rm_claims (contract_id)",
        f"CREATE TABLE IF NOT EXISTS {n}rm_deadlines (aggregate_id {u} NOT NULL, kind TEXT NOT NULL, "
        f"ref TEXT NOT NULL, due_on {d} NOT NULL, PRIMARY KEY (aggregate_id, kind, ref))",
        f"CREATE INDEX IF NOT EXISTS rm_deadlines_due ON {n}rm_deadlines (due_on, kind, aggregate_id, ref)",
        # customer_number last: where it was added to an existing table (ALTER TABLE appends it) the
        # columns stand in the same order, so a rebuild's INSERT ... SELECT * lines up
        f"CREATE TABLE IF NOT EXISTS {n}rm_contracts (contract_id {u} PRIMARY KEY, service TEXT NOT NULL, "
        f"state TEXT NOT NULL, version {big} NOT NULL, position {big} NOT NULL, doc TEXT NOT NULL, "
        "customer_number TEXT NOT NULL DEFAULT '')",
        f"CREATE INDEX IF NOT EXISTS rm_contracts_service ON {n}rm_contracts (service, state)",
        f"CREATE TABLE IF NOT EXISTS {n}rm_event_times (position {big} PRIMARY KEY, originator_id {u} NOT NULL, "
        f"version {big} NOT NULL, recorded_at {ts} NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS rm_event_times_originator ON {n}rm_event_times (originator_id, version)",
        f"CREATE TABLE IF NOT EXISTS {n}rm_damaged (position {big} PRIMARY KEY, aggregate_id {u} NOT NULL, "
        f"version {big} NOT NULL, event TEXT NOT NULL, reason TEXT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS rm_damaged_aggregate ON {n}rm_damaged (aggregate_id)",
        f"CREATE TABLE IF NOT EXISTS {n}rm_transfers (transfer_id {u} PRIMARY KEY, status TEXT NOT NULL, "
        f"value_date {d} NOT NULL, amount {big} NOT NULL, position {big} NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS rm_transfers_status ON {n}rm_transfers (status, value_date, transfer_id)",
    ]
    if documents:
        statements += document_indexes(t)
    return [s.replace("CREATE INDEX IF NOT EXISTS ", "CREATE INDEX IF NOT EXISTS " + t["ix"]) for s in statements]


def _index_name(statement: str) -> str | None:
    """The index a CREATE INDEX statement of ``ddl`` makes, without a shadow's prefix (None: not one)."""
    head = "CREATE INDEX IF NOT EXISTS "
    return statement[len(head):].split(" ", 1)[0].removeprefix(SHADOW) if statement.startswith(head) else None


def customer_column_ddl(prefix: str) -> list[str]:
    """Contract search by customer number (issue 19), for tables made before it: the column (added
    by each dialect when missing; SQLite has no ADD COLUMN IF NOT EXISTS), then its index. The
    numbered migration 3 (``infrastructure.schema``) fills the column of the contracts already
    projected."""
    return [f"CREATE INDEX IF NOT EXISTS rm_contracts_customer ON {prefix}rm_contracts (customer_number, contract_id)"]


# The columns issued invoices added to rm_invoices (issue 16), for stores whose table predates them
# (CREATE TABLE IF NOT EXISTS leaves an existing table as it was): each dialect adds what is missing
# before ``document_indexes`` (their indexes) run. The rows of such a store are recomputed by
# ``contracts projections rebuild``.
DOCUMENT_COLUMNS = (("number", "TEXT NOT NULL DEFAULT ''"), ("document_type", "TEXT NOT NULL DEFAULT 'invoice'"),
                    ("counterparty", "TEXT NOT NULL DEFAULT ''"), ("doc", "TEXT NOT NULL DEFAULT ''"))


def document_indexes(t: dict[str, str]) -> list[str]:
    """The auditors' search (Electronic Bookkeeping Act): issue date, amount, counterparty; cursor on number."""
    n = t["prefix"]
    return [f"CREATE INDEX IF NOT EXISTS rm_invoices_issued ON {n}rm_invoices (issued_on, number)",
            f"CREATE INDEX IF NOT EXISTS rm_invoices_counterparty ON {n}rm_invoices (counterparty, issued_on)",
            f"CREATE INDEX IF NOT EXISTS rm_invoices_number ON {n}rm_invoices (number)"]


class ReadTables:
    """Queries and batch writes over the read tables, parameterised by the dialect hooks below."""

    P = "?"  # placeholder
    prefix = ""  # schema qualification of table names
    index_prefix = ""  # SHADOW for a rebuild's tables
    tracking_name = TRACKING_NAME  # key of this store's row in the tracking table

    # -- dialect hooks ---------------------------------------------------------------------------
    @abstractmethod
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _locked(self) -> AbstractContextManager[tuple[Any, int]]:
        """A write transaction (its cursor) holding the lock on this store's tracking row, and the
        position that row holds (0 when there is none)."""

    def _moved(self, cur: Any, position: int | None) -> None:
        """Hook run in ``_write``'s transaction after the tracking position is updated."""

    if TYPE_CHECKING:  # the library's tracking recorder, which every dialect's store also is
        def _insert_tracking(self, c: Any, tracking: Tracking) -> None: ...

    @contextmanager
    def _write(self, previous: int, position: int | None, exact: bool = False) -> Iterator[Any]:
        """A write transaction; checks the tracking position is ``previous`` (unless negative) and
        moves it forward to ``position`` at the end (``None``: set to 0; ``exact``: set, even back;
        ``KEEP``: leave it)."""
        with self._locked() as (cur, current):
            if previous >= 0 and current != previous:
                raise StalePosition(f"read models are at {current}, batch starts after {previous}")
            yield cur
            if position == KEEP:
                pass
            elif position is None or exact:
                self._set_tracking(cur, position or 0)
            else:
                self._advance(cur, position)
                return
            self._moved(cur, position)

    def _advance(self, cur: Any, position: int) -> None:
        """A batch's end: the tracking row moved forward to ``position`` (the library's insert), then
        the move announced (``_moved``)."""
        self._insert_tracking(cur, Tracking(self.tracking_name, position))
        self._moved(cur, position)

    @abstractmethod
    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]: ...

    @abstractmethod
    def _ddl_types(self) -> dict[str, str]: ...

    @abstractmethod
    def _set_tracking(self, cur: Any, position: int) -> None:
        """Set this store's tracking row to ``position`` (down as well as up)."""

    def _clear(self, cur: Any) -> None:
        for table in TABLES:
            cur.execute(f"DELETE FROM {self.prefix}{table}")

    def db(self, value: Any) -> Any:
        """Python value -> parameter (SQLite stores text)."""
        return value

    # per-type converters for the hot path (identity on PostgreSQL)
    db_uuid: Any = staticmethod(lambda v: v)
    db_date: Any = staticmethod(lambda v: v)
    db_ts: Any = staticmethod(lambda v: v)

    def py_uuid(self, value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    def py_date(self, value: Any) -> date:
        return value if isinstance(value, date) else date.fromisoformat(str(value))

    # -- writes ----------------------------------------------------------------------------------
    def commit(self, changes: Changes, previous: int, position: int) -> None:
        n, p = self.prefix, self.P
        u, d, ts = self.db_uuid, self.db_date, self.db_ts
        with self._write(previous, position) as cur:
            if changes.invoices:
                cols = ", ".join(INVOICE_COLUMNS)
                marks = ", ".join([p] * len(INVOICE_COLUMNS))
                cur.executemany(
                    f"INSERT INTO {n}rm_invoices AS inv ({cols}) VALUES ({marks}) "
                    f"ON CONFLICT (invoice_id) DO UPDATE SET {INVOICE_UPDATES}",
                    [invoice_values(r, u, d) for r in changes.invoices])
            if changes.payments:
                cur.executemany(
                    f"INSERT INTO {n}rm_payments (position, invoice_id, contract_id, paid_on, amount, kind) "
                    f"VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                    [(r.position, u(r.invoice_id), u(r.contract_id), d(r.paid_on), r.amount, r.kind)
                     for r in changes.payments])
            if changes.claims:
                cur.executemany(
                    f"INSERT INTO {n}rm_claims (claim_id, contract_id, status, doc) VALUES ({p}, {p}, {p}, {p}) "
                    "ON CONFLICT (claim_id) DO UPDATE SET contract_id = excluded.contract_id, "
                    "status = excluded.status, doc = excluded.doc",
                    [(u(r.claim_id), u(r.contract_id), r.status, r.doc) for r in changes.claims])
            if changes.deadlines_cleared:
                cur.executemany(f"DELETE FROM {n}rm_deadlines WHERE aggregate_id = {p} AND kind = {p}",
                                [(u(a), k) for a, k in changes.deadlines_cleared])
            if changes.deadlines_removed:
                cur.executemany(
                    f"DELETE FROM {n}rm_deadlines WHERE aggregate_id = {p} AND kind = {p} AND ref = {p}",
                    [(u(a), k, r) for a, k, r in changes.deadlines_removed])
            if changes.deadlines_added:
                cur.executemany(
                    f"INSERT INTO {n}rm_deadlines (aggregate_id, kind, ref, due_on) VALUES ({p}, {p}, {p}, {p}) "
                    "ON CONFLICT (aggregate_id, kind, ref) DO UPDATE SET due_on = excluded.due_on",
                    [(u(r.aggregate_id), r.kind, r.ref, d(r.due_on)) for r in changes.deadlines_added])
            if changes.states:
                cur.executemany(
                    f"INSERT INTO {n}rm_contracts (contract_id, service, state, version, position, doc, "
                    f"customer_number) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (contract_id) DO UPDATE "
                    "SET service = excluded.service, state = excluded.state, version = excluded.version, "
                    "position = excluded.position, doc = excluded.doc, customer_number = excluded.customer_number",
                    [(u(r.contract_id), r.service, r.state, r.version, r.position, r.doc, r.customer_number)
                     for r in changes.states])
            if changes.counterparties_erased:
                cur.executemany(f"UPDATE {n}rm_invoices SET counterparty = '' WHERE contract_id = {p}",
                                [(u(c),) for c in changes.counterparties_erased])
            if changes.event_times:
                cur.executemany(
                    f"INSERT INTO {n}rm_event_times (position, originator_id, version, recorded_at) "
                    f"VALUES ({p}, {p}, {p}, {p})",
                    [(r.position, u(r.originator_id), r.version, ts(r.recorded_at)) for r in changes.event_times])
            if changes.damaged:
                cur.executemany(
                    f"INSERT INTO {n}rm_damaged (position, aggregate_id, version, event, reason) "
                    f"VALUES ({p}, {p}, {p}, {p}, {p})",
                    [(r.position, u(r.aggregate_id), r.version, r.event, r.reason) for r in changes.damaged])
            self._write_transfers(cur, changes)

    def _write_transfers(self, cur: Any, changes: Changes) -> None:
        """Rule book 7 transfers: a new one inserted unless present, a status only moved forward
        (so a backfill and the runner may both apply an event)."""
        n, p, u, d = self.prefix, self.P, self.db_uuid, self.db_date
        if changes.transfers:
            cur.executemany(
                f"INSERT INTO {n}rm_transfers (transfer_id, status, value_date, amount, position) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (transfer_id) DO NOTHING",
                [(u(r.transfer_id), r.status, d(r.value_date), r.amount, r.position) for r in changes.transfers])
        if changes.transfer_status:
            cur.executemany(
                f"UPDATE {n}rm_transfers SET status = {p}, position = {p} WHERE transfer_id = {p} AND position < {p}",
                [(r.status, r.position, u(r.transfer_id), r.position) for r in changes.transfer_status])

    def write_transfers(self, changes: Changes) -> None:
        with self._write(-1, KEEP) as cur:
            self._write_transfers(cur, changes)

    def reset(self) -> None:
        with self._write(-1, None) as cur:
            self._clear(cur)

    # -- rebuild beside the live tables, then swap (issue 14) ----------------------------------------
    def shadow(self, create: bool = True) -> Any:
        """A copy of this store over empty ``rb_`` tables with their own tracking row; ``create=False``:
        over the ``rb_`` tables as they are (a worker process of a split rebuild)."""
        other = copy.copy(self)
        other.prefix = self.prefix + SHADOW
        other.index_prefix = SHADOW
        other.tracking_name = self.tracking_name + ".rebuild"
        other._forget_connections()
        if not create:
            return other
        n = other.prefix
        with other._write(-1, None) as cur:
            other._delete_parts(cur)  # left by a split rebuild that was killed
            for table in TABLES:
                cur.execute(f"DROP TABLE IF EXISTS {n}{table}")
            for statement in other._shadow_ddl():
                if _index_name(statement) not in DEFERRED_INDEXES:
                    cur.execute(statement)
        return other

    def _shadow_ddl(self) -> list[str]:
        """A shadow's CREATE statements: the live tables' DDL, index names prefixed ``rb_``."""
        return [*ddl({**self._ddl_types(), "prefix": self.prefix, "ix": SHADOW}),
                *(s.replace("CREATE INDEX IF NOT EXISTS ", "CREATE INDEX IF NOT EXISTS " + SHADOW)
                  for s in customer_column_ddl(self.prefix))]  # the live tables' index, named for the shadow

    def index_shadow(self) -> None:
        """The ``DEFERRED_INDEXES`` of this (filled) shadow: then it has every index of the live tables."""
        with self._write(-1, KEEP) as cur:
            for statement in self._shadow_ddl():
                if _index_name(statement) in DEFERRED_INDEXES:
                    cur.execute(statement)

    def part(self, number: int) -> Any:
        """This shadow's tables with a tracking row of their own: one worker process of a split
        rebuild (``infrastructure.rebuild_split``) writes its share of the rows through it, its
        batches checked against its own position."""
        assert self.tracking_name.endswith(".rebuild"), "parts are a shadow's"
        other = copy.copy(self)
        other.tracking_name = f"{self.tracking_name}.{number}"
        other._forget_connections()
        return other

    def adopt_parts(self, parts: int, position: int) -> None:
        """After every worker of a split rebuild finished: each part must have reached ``position``
        (else ``StalePosition``, nothing changes); then, in one transaction, the parts' tracking
        rows go and this shadow's position is ``position`` (what ``replace_with`` then installs)."""
        reached = [self.part(k).position() for k in range(parts)]
        if any(at != position for at in reached):
            raise StalePosition(f"the parts of the rebuild reached {reached}, not {position}")
        with self._write(-1, position, exact=True) as cur:
            self._delete_parts(cur)

    @abstractmethod
    def _delete_parts(self, cur: Any) -> None:
        """Delete the tracking rows of this shadow's parts (``part``)."""

    def replace_with(self, shadow: Any) -> int:
        """One transaction: these tables' rows become the shadow's, the position the shadow's; the
        shadow's tables and tracking row go. A runner that was further along meets a stale position
        and goes on from here (``StalePosition``)."""
        position, n = shadow.position(), shadow.prefix
        with self._write(-1, position, exact=True) as cur:
            self._clear(cur)
            for table in TABLES:
                cur.execute(f"INSERT INTO {self.prefix}{table} SELECT * FROM {n}{table}")
            shadow._drop_in(cur)
        return int(position)

    def drop(self) -> None:
        with self._write(-1, KEEP) as cur:  # its tracking row goes too (``None`` would set it to 0 again)
            self._drop_in(cur)

    def _drop_in(self, cur: Any) -> None:
        assert self.tracking_name != TRACKING_NAME, "only a shadow's tables are dropped"
        for table in TABLES:
            cur.execute(f"DROP TABLE IF EXISTS {self.prefix}{table}")
        self._delete_tracking(cur)
        self._delete_parts(cur)

    def _forget_connections(self) -> None:
        """The copy shares the datastore; anything connection-bound is its own."""

    @abstractmethod
    def _delete_tracking(self, cur: Any) -> None: ...

    # -- reads for the projector ------------------------------------------------------------------
    def load_states(self, contract_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        out: dict[uuid.UUID, str] = {}
        for chunk in _chunks(contract_ids):
            where, params = self._in("contract_id", [self.db(c) for c in chunk])
            for cid, doc in self._rows(f"SELECT contract_id, doc FROM {self.prefix}rm_contracts WHERE {where}",
                                       params):
                out[self.py_uuid(cid)] = doc
        return out

    def load_invoices(self, invoice_ids: Sequence[uuid.UUID]) -> list[Invoice]:
        return self._invoices("invoice_id", list(invoice_ids))

    def load_contract_invoices(self, contract_ids: Sequence[uuid.UUID]) -> list[Invoice]:
        return self._invoices("contract_id", list(contract_ids))

    def damaged_aggregates(self) -> set[uuid.UUID]:
        return {self.py_uuid(a) for (a,) in self._rows(f"SELECT DISTINCT aggregate_id FROM {self.prefix}rm_damaged")}

    def damaged_events(self) -> list[DamagedRow]:
        return [DamagedRow(int(p), self.py_uuid(a), int(v), e, r) for p, a, v, e, r in self._rows(
            f"SELECT position, aggregate_id, version, event, reason FROM {self.prefix}rm_damaged ORDER BY position")]

    def _invoices(self, column: str, keys: Sequence[Any], order: str = "contract_id, month, kind, period"
                  ) -> list[Invoice]:
        out: list[Invoice] = []
        cols = ", ".join(INVOICE_COLUMNS)
        for chunk in _chunks(keys):
            where, params = self._in(column, [self.db(k) for k in chunk])
            rows = self._rows(f"SELECT {cols} FROM {self.prefix}rm_invoices WHERE {where} ORDER BY {order}", params)
            out.extend(self._assemble(rows))
        return out

    def _assemble(self, rows: list[tuple[Any, ...]]) -> list[Invoice]:
        if not rows:
            return []
        settled: dict[uuid.UUID, list[tuple[str, date, int]]] = {}
        ids = [row[0] for row in rows]
        for chunk in _chunks(ids):
            where, params = self._in("invoice_id", list(chunk))
            for iid, paid_on, amount, kind in self._rows(
                    f"SELECT invoice_id, paid_on, amount, kind FROM {self.prefix}rm_payments WHERE {where} "
                    "ORDER BY position", params):
                settled.setdefault(self.py_uuid(iid), []).append((str(kind), self.py_date(paid_on), int(amount)))
        out = []
        for row in rows:
            record = dict(zip(INVOICE_COLUMNS, row, strict=True))
            out.append(invoice_from_row(record, settled.get(self.py_uuid(record["invoice_id"]), [])))
        return out

    # -- queries -----------------------------------------------------------------------------------
    def invoices_of(self, contract_id: uuid.UUID) -> list[Invoice]:
        return self._invoices("contract_id", [contract_id], order="month, kind, period")

    def invoices_in_month(self, month: str, *, limit: int | None = None,
                          after: uuid.UUID | None = None) -> list[Invoice]:
        """Every invoice of ``month``; with ``limit``: one page in invoice id order, after ``after``."""
        cols = ", ".join(INVOICE_COLUMNS)
        sql, params = f"SELECT {cols} FROM {self.prefix}rm_invoices WHERE month = {self.P}", [month]
        if limit is None:
            return self._assemble(self._rows(sql + " ORDER BY contract_id, kind, period", params))
        if after is not None:
            sql += f" AND invoice_id > {self.P}"
            params.append(self.db(after))
        return self._assemble(self._rows(sql + f" ORDER BY invoice_id LIMIT {self.P}", [*params, limit]))

    def invoice(self, invoice_id: uuid.UUID) -> Invoice | None:
        found = self._invoices("invoice_id", [invoice_id])
        return found[0] if found else None

    def search_invoices(self, *, issued_from: date | None = None, issued_to: date | None = None,
                        amount_min: int | None = None, amount_max: int | None = None,
                        counterparty: str | None = None, after: tuple[date, str] | None = None,
                        limit: int = 100) -> list[Invoice]:
        """Issued invoices and credit notes by issue-date range, amount range (the total with tax) and
        counterparty (its blind index), alone or combined (Electronic Bookkeeping Act); ordered by
        issue date and number, a page after the cursor ``after`` = (issued_on, number)."""
        p, where, params = self.P, ["number <> ''"], list[Any]()
        if issued_from is not None:
            where.append(f"issued_on >= {p}")
            params.append(self.db(issued_from))
        if issued_to is not None:
            where.append(f"issued_on <= {p}")
            params.append(self.db(issued_to))
        if amount_min is not None:
            where.append(f"total >= {p}")
            params.append(amount_min)
        if amount_max is not None:
            where.append(f"total <= {p}")
            params.append(amount_max)
        if counterparty is not None:
            where.append(f"counterparty = {p}")
            params.append(counterparty)
        if after is not None:
            where.append(f"(issued_on > {p} OR (issued_on = {p} AND number > {p}))")
            params.extend([self.db(after[0]), self.db(after[0]), after[1]])
        cols = ", ".join(INVOICE_COLUMNS)
        rows = self._rows(f"SELECT {cols} FROM {self.prefix}rm_invoices WHERE {' AND '.join(where)} "
                          f"ORDER BY issued_on, number LIMIT {p}", [*params, limit])
        return self._assemble(rows)

    def claims_of(self, contract_id: uuid.UUID) -> list[str]:
        return [doc for (doc,) in self._rows(
            f"SELECT doc FROM {self.prefix}rm_claims WHERE contract_id = {self.P} ORDER BY claim_id",
            (self.db(contract_id),))]

    def deadlines_until(self, until: date, limit: int | None,
                        after: DeadlineRow | None = None) -> list[DeadlineRow]:
        """Ordered by (due_on, kind, aggregate_id, ref), the index's order; ``after``: the rows past
        that one (a page's cursor: a row-value comparison both dialects answer from the index)."""
        p = self.P
        sql = f"SELECT due_on, kind, aggregate_id, ref FROM {self.prefix}rm_deadlines WHERE due_on <= {p}"
        params: list[Any] = [self.db(until)]
        if after is not None:
            sql += f" AND (due_on, kind, aggregate_id, ref) > ({p}, {p}, {p}, {p})"
            params.extend([self.db(after.due_on), after.kind, self.db(after.aggregate_id), after.ref])
        sql += " ORDER BY due_on, kind, aggregate_id, ref"
        if limit is not None:
            sql += f" LIMIT {self.P}"
            params.append(limit)
        return [DeadlineRow(self.py_date(d), k, self.py_uuid(a), r) for d, k, a, r in self._rows(sql, params)]

    def deadlines_on(self, day: date, kind: str, limit: int) -> list[DeadlineRow]:
        """One kind of one day, a page at a time (the same index as ``deadlines_until``)."""
        sql = (f"SELECT due_on, kind, aggregate_id, ref FROM {self.prefix}rm_deadlines WHERE due_on = {self.P} "
               f"AND kind = {self.P} ORDER BY aggregate_id, ref LIMIT {self.P}")
        return [DeadlineRow(self.py_date(d), k, self.py_uuid(a), r)
                for d, k, a, r in self._rows(sql, [self.db(day), kind, limit])]

    def unapplied_transfers(self, limit: int | None) -> list[uuid.UUID]:
        sql = (f"SELECT transfer_id FROM {self.prefix}rm_transfers WHERE status = {self.P} "
               "ORDER BY value_date, transfer_id")
        params: list[Any] = ["unapplied"]
        if limit is not None:
            sql += f" LIMIT {self.P}"
            params.append(limit)
        return [self.py_uuid(t) for (t,) in self._rows(sql, params)]

    def claim_contract(self, claim_id: uuid.UUID) -> uuid.UUID | None:
        rows = self._rows(f"SELECT contract_id FROM {self.prefix}rm_claims WHERE claim_id = {self.P}",
                          (self.db(claim_id),))
        return self.py_uuid(rows[0][0]) if rows else None

    def state_doc(self, contract_id: uuid.UUID) -> str | None:
        rows = self._rows(f"SELECT doc FROM {self.prefix}rm_contracts WHERE contract_id = {self.P}",
                          (self.db(contract_id),))
        return rows[0][0] if rows else None

    def search_contracts(self, customer_number: str | None, service: str | None, states: Sequence[str],
                         limit: int, after: uuid.UUID | None,
                         customer_prefix: str | None = None) -> list[ContractRow]:
        """One page of contracts in id order, filtered by customer number (or its prefix), service and
        states. The prefix is compared with ``substr`` (no ``LIKE``: SQLite's ignores ASCII case, and a
        ``%`` or ``_`` in a customer number would need escaping): exact and case-sensitive on both
        databases, read by walking the id order, not through the customer-number index."""
        p = self.P
        sql = (f"SELECT contract_id, customer_number, service, state, version FROM {self.prefix}rm_contracts "
               "WHERE 1 = 1")
        params: list[Any] = []
        if customer_number is not None:
            sql += f" AND customer_number = {p}"
            params.append(customer_number)
        if customer_prefix is not None:
            sql += f" AND substr(customer_number, 1, {p}) = {p}"
            params.extend([len(customer_prefix), customer_prefix])
        where, more = self._service_and_states(service, states)
        sql += where
        params.extend(more)
        if after is not None:
            sql += f" AND contract_id > {p}"
            params.append(self.db(after))
        rows = self._rows(sql + f" ORDER BY contract_id LIMIT {p}", [*params, limit])
        return [ContractRow(self.py_uuid(c), str(n), str(s), str(st), int(v)) for c, n, s, st, v in rows]

    def contracts_without_customer(self) -> list[uuid.UUID]:
        """Contracts projected before the customer number was (migration 2 fills them)."""
        return [self.py_uuid(c) for (c,) in self._rows(
            f"SELECT contract_id FROM {self.prefix}rm_contracts WHERE customer_number = '' ORDER BY contract_id")]

    def set_customer_numbers(self, numbers: dict[uuid.UUID, str]) -> int:
        """Fill the column and the projection document of each contract (one transaction; the
        tracking position is left as it is). Returns the rows changed."""
        from application.projections.state import ContractProjection

        docs = self.load_states(list(numbers))
        p, changed, position = self.P, 0, self.position()
        with self._write(position, position, exact=True) as cur:  # a runner moving meanwhile: StalePosition
            for contract_id, doc in docs.items():
                state = ContractProjection.from_json(doc)
                state.customer_number = numbers[contract_id]
                cur.execute(f"UPDATE {self.prefix}rm_contracts SET customer_number = {p}, doc = {p} "
                            f"WHERE contract_id = {p}", (state.customer_number, state.to_json(), self.db(contract_id)))
                changed += 1
        return changed

    def contract_ids(self, service: str | None = None, states: Sequence[str] = ()) -> list[uuid.UUID]:
        where, params = self._service_and_states(service, states)
        sql = f"SELECT contract_id FROM {self.prefix}rm_contracts WHERE 1 = 1{where} ORDER BY contract_id"
        return [self.py_uuid(c) for (c,) in self._rows(sql, params)]

    def _service_and_states(self, service: str | None, states: Sequence[str]) -> tuple[str, list[Any]]:
        """The `` AND ...`` conditions of the contract filters given (service, any of states) on
        rm_contracts, and their parameters in order."""
        sql, params = "", list[Any]()
        if service is not None:
            sql += f" AND service = {self.P}"
            params.append(service)
        if states:
            where, more = self._in("state", list(states))
            sql += f" AND {where}"
            params.extend(more)
        return sql, params

    def version_at(self, aggregate_id: uuid.UUID, at: datetime | None, position: int | None) -> int | None:
        n, p, oid = self.prefix, self.P, self.db(aggregate_id)
        if position is not None:
            rows = self._rows(f"SELECT MAX(version) FROM {n}rm_event_times WHERE originator_id = {p} "
                              f"AND position <= {p}", (oid, position))
            version = rows[0][0] if rows else None
        else:
            assert at is not None
            first_after = self._rows(f"SELECT MIN(version) FROM {n}rm_event_times WHERE originator_id = {p} "
                                     f"AND recorded_at > {p}", (oid, self.db(at)))[0][0]
            if first_after is not None:
                version = int(first_after) - 1
            else:
                version = self._rows(f"SELECT MAX(version) FROM {n}rm_event_times WHERE originator_id = {p}",
                                     (oid,))[0][0]
        return int(version) if version else None

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        out = {table: [tuple(_norm(v) for v in row) for row in self._rows(
            f"SELECT * FROM {self.prefix}{table} ORDER BY {ORDER[table]}")] for table in TABLES}
        out["tracking"] = [(self.position(),)]
        return out

    @abstractmethod
    def position(self) -> int: ...


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), CHUNK):
        yield values[i:i + CHUNK]


def _norm(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value
