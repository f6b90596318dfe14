"""A rebuild's batches committed on a thread of their own while the next batch is folded (issue 21).

The rebuild's time was about a quarter waiting for PostgreSQL to write each batch; with the
commits on a writer thread (psycopg releases the GIL while the server works) the server writes
batch N while this process decodes and folds batch N+1. Batches are committed one at a time, in
order, each in one transaction with its tracking position, exactly as ``ReadStore.commit`` does.

What the projector reads back stays exact: ``source`` answers from the store only once no batch
still being written touches the rows asked for (a contract's state, an invoice and its payments);
otherwise it first waits for the pending commits. A row no pending batch writes is final already.
At most ``depth`` batches wait, so memory stays bounded. A failed commit stops the writer; the next
``submit``, ``flush`` or read raises it. ``committed(changes, position)`` runs on the writer thread
after each commit.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence

from application.projections.ports import Changes, ReadStore
from domain.billing import Invoice


class PipelinedWriter:
    """Commits ``(changes, previous, position)`` to ``store`` in submission order on its own thread."""

    def __init__(self, store: ReadStore, depth: int = 1,
                 committed: Callable[[Changes, int], None] | None = None) -> None:
        self.store, self.depth, self.committed = store, depth, committed
        self._pending: deque[tuple[Changes, int, int, frozenset[uuid.UUID], frozenset[uuid.UUID]]] = deque()
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._closed = self._aborted = False
        self.position: int | None = None  # last committed position
        self._thread = threading.Thread(target=self._run, name="rebuild-writer", daemon=True)
        self._thread.start()

    # -- the folding thread ----------------------------------------------------------------------
    def submit(self, changes: Changes, previous: int, position: int) -> None:
        states = frozenset(r.contract_id for r in changes.states)
        invoices = frozenset([r.invoice_id for r in changes.invoices] + [r.invoice_id for r in changes.payments])
        with self._cond:
            while len(self._pending) > self.depth and self._error is None:
                self._cond.wait()
            self._raise()
            self._pending.append((changes, previous, position, states, invoices))
            self._cond.notify_all()

    def flush(self) -> None:
        """Until every submitted batch is committed (raises the writer's error)."""
        with self._cond:
            while self._pending and self._error is None:
                self._cond.wait()
            self._raise()

    def close(self) -> None:
        """Stop the thread (after the batches already submitted, unless one failed)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def abort(self) -> None:
        """Stop the thread after the commit under way, if any; the batches still waiting are dropped."""
        with self._cond:
            self._closed = self._aborted = True
            self._cond.notify_all()
        self._thread.join()

    def source(self) -> PendingAwareSource:
        return PendingAwareSource(self)

    def _touches(self, states: Sequence[uuid.UUID] = (), invoices: Sequence[uuid.UUID] = ()) -> bool:
        with self._cond:
            return any(not s.isdisjoint(states) or not i.isdisjoint(invoices) for _, _, _, s, i in self._pending)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the writer thread -----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending or self._error is not None or self._aborted:
                    return
                changes, previous, position, _, _ = self._pending[0]
            try:
                self.store.commit(changes, previous, position)
                if self.committed is not None:
                    self.committed(changes, position)
            except BaseException as exc:  # noqa: BLE001 - handed to the folding thread
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._pending.popleft()
                self.position = position
                self._cond.notify_all()


class PendingAwareSource:
    """The store's ``StateSource`` reads, each after the pending commits that write the rows it reads."""

    def __init__(self, writer: PipelinedWriter) -> None:
        self.writer, self.store = writer, writer.store

    def load_states(self, contract_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        if self.writer._touches(states=contract_ids):
            self.writer.flush()
        return self.store.load_states(contract_ids)

    def load_invoices(self, invoice_ids: Sequence[uuid.UUID]) -> list[Invoice]:
        if self.writer._touches(invoices=invoice_ids):
            self.writer.flush()
        return self.store.load_invoices(invoice_ids)

    def load_contract_invoices(self, contract_ids: Sequence[uuid.UUID]) -> list[Invoice]:
        self.writer.flush()
        return self.store.load_contract_invoices(contract_ids)

    def damaged_aggregates(self) -> set[uuid.UUID]:
        self.writer.flush()
        return self.store.damaged_aggregates()
