"""The transfers read model (rule book 7): every bank transfer with its status, so the operator's
list of unapplied transfers (payer unknown, to be applied by hand) is one indexed query instead
of a scan of the event log.

A row holds no personal data (spec 10): no payer name, no bank reference. The listing reads the
ids here and loads each transfer for its payer, which the reader's role may or may not see.

Rows are written idempotently, so the migration that backfills them from the log
(``infrastructure.schema``) and the runner may both see an event: a new transfer is inserted
unless present, and a status change only moves a row forward (its event's position is newer
than the row's).
"""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import get_topic

from application.projections.ports import Changes, ReadStore, TransferRow, TransferStatusRow
from application.undecodable import UndecodableEvent, decode_event
from domain.folds import event_class
from domain.settlement import Transfer

RECEIVED = event_class(Transfer, "Received")
APPLIED = event_class(Transfer, "Applied")
REVERSED = event_class(Transfer, "Reversed")
STATUS_OF: dict[type, str] = {APPLIED: "applied", REVERSED: "reversed"}
"""Transfer event class -> the status it leaves the transfer in (``Received``: unapplied)."""


def project_transfer(position: int, event: Any, changes: Changes) -> bool:
    """Add the row change of one Transfer event to ``changes``; False for any other event."""
    if isinstance(event, RECEIVED):
        changes.transfers.append(TransferRow(event.originator_id, "unapplied", event.value_date, int(event.amount),
                                             position))
        return True
    status = STATUS_OF.get(type(event))
    if status is not None:
        changes.transfer_status.append(TransferStatusRow(event.originator_id, status, position))
        return True
    return isinstance(event, Transfer.Event)  # e.g. PayerDataErased: the status stays


def backfill_transfers(app: Any, store: ReadStore, batch: int = 500) -> int:
    """The transfers table from the whole event log (migration 2: stores written before the table
    existed), whatever the runner's position; returns how many transfers it holds rows for. Events
    the runner applies again later change nothing (``project_transfer`` rows only move forward)."""
    topics = [get_topic(cls) for cls in (RECEIVED, APPLIED, REVERSED)]
    seen: set[Any] = set()
    start = 1
    while True:
        notifications = app.recorder.select_notifications(start=start, limit=batch, topics=topics)
        if not notifications:
            return len(seen)
        changes = Changes()
        for n in notifications:
            try:
                event = decode_event(app.mapper, n, position=n.id, open_sealed=False)
            except UndecodableEvent:
                continue  # the runner records it (rm_damaged) and stops its aggregate
            project_transfer(n.id, event, changes)
            seen.add(event.originator_id)
        store.write_transfers(changes)
        start = notifications[-1].id + 1
