"""A rebuild split across processes by aggregate (issue 21).

One process folds ~14,000 events/s (decoding, the domain fold, the rows: ~70 us of CPU per event,
nothing above a fifth), so a large rebuild is bound by one core of Python. An aggregate's rows
depend on its own events only (invoices, payments, claims, deadlines and the projection state are
one contract's; a transfer's row is that transfer's; event times and damaged events are keyed by
position), so N parts share the aggregates by id (``share``): each reads its aggregates' events up
to the rebuild's last position (on PostgreSQL the server filters them: ``share_reader``), folds
them and writes their rows into the same shadow tables through a tracking row of its own
(``ReadStore.part``), so each of its batches is still checked against the position it started
from. Every row is the one a single process writes, written by one part in the same order.

Part 0 runs in the rebuilding process (no second start-up of the interpreter), the others in
spawned worker processes. A part that fails (an exception, or a worker killed) stops the others
and fails the rebuild (the caller then drops the shadow: the live tables are untouched). Once
every part has reached the last position, the shadow adopts it (``adopt_parts``) and the caller
swaps it in.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from application.projections.ports import Changes, ReadStore

if TYPE_CHECKING:
    from infrastructure.read_side import ProjectionRunner

Reader = Callable[[int, int, int], Sequence[Notification]]  # (start, limit, stop) -> notifications


class WorkerFailed(RuntimeError):
    """A part of a split rebuild raised, or its worker process died."""


@dataclass
class SplitResult:
    applied: int  # events applied, all parts together
    peaks_mib: list[float] = field(default_factory=list)  # each process's peak resident memory


def share(part: int, parts: int) -> Callable[[Notification], bool]:
    """Whether a notification's aggregate is ``part``'s (of ``parts``): the last byte of its id modulo
    ``parts`` (the rule of ``share_reader``'s SQL too; ids are uuid4/uuid5, their last byte uniform)."""
    def mine(n: Notification) -> bool:
        oid = n.originator_id
        return (oid if isinstance(oid, uuid.UUID) else uuid.UUID(str(oid))).bytes[15] % parts == part
    return mine


def share_reader(recorder: Any, part: int, parts: int) -> Reader | None:
    """On PostgreSQL, ``read(start, limit, stop)``: the next ``limit`` notifications of ``part``'s
    aggregates from ``start`` up to ``stop``, filtered by the server (each part reads its share of
    the log, not all of it). None elsewhere (the part filters the whole log with ``share``)."""
    datastore = getattr(recorder, "datastore", None)
    if not isinstance(datastore, PostgresDatastore):
        return None
    statement = SQL("SELECT notification_id, originator_id, originator_version, topic, state FROM {}.{} "
                    "WHERE notification_id >= %s AND notification_id <= %s "
                    "AND get_byte(uuid_send(originator_id), 15) %% %s = %s ORDER BY notification_id LIMIT %s").format(
        Identifier(datastore.schema), Identifier(recorder.events_table_name))

    def read(start: int, limit: int, stop: int) -> Sequence[Notification]:
        with datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(statement, (start, stop, parts, part, limit), prepare=True)
            return [Notification(id=r["notification_id"], originator_id=r["originator_id"],
                                 originator_version=r["originator_version"], topic=r["topic"], state=bytes(r["state"]))
                    for r in cur.fetchall()]
    return read


def split_rebuild(runner: ProjectionRunner, recipe: Callable[[], ProjectionRunner], shadow: ReadStore,
                  processes: int, stop: int, batch_size: int,
                  committed: Callable[[Changes, int], None]) -> SplitResult:
    """Rebuild into ``shadow`` up to position ``stop`` in ``processes`` parts: part 0 by ``runner`` in
    this process, each other one in a fresh process by the runner ``recipe`` (picklable) builds there;
    ``committed(changes, position)`` after each committed batch of any part (its damaged events) with
    the position every part has passed. Raises (every part stopped, ``shadow`` as they left it) or
    returns once ``shadow`` holds every row and the position ``stop``."""
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads and pooled connections
    reached, lock = [0] * processes, threading.Lock()

    def report(part: int, changes: Changes, position: int) -> None:
        with lock:
            reached[part] = position
            committed(changes, min(reached))

    workers: list[tuple[BaseProcess, Connection]] = []
    supervisor = _Supervisor(workers, report)
    try:
        for part in range(1, processes):
            receiving, sending = context.Pipe(duplex=False)
            process = context.Process(target=_work, args=(recipe, part, processes, stop, batch_size, sending),
                                      name=f"rebuild-{part}", daemon=True)
            process.start()
            sending.close()  # the worker's end: EOF here once the worker is gone
            workers.append((process, receiving))
        supervisor.start()
        applied = _replay_part(runner, shadow, 0, processes, stop, batch_size,
                               lambda changes, position: report(0, changes, position), supervisor.failed)
        supervisor.join()
        if supervisor.error is not None:
            raise supervisor.error
    finally:
        for worker, _ in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()
        if supervisor.is_alive():
            supervisor.join()
        for _, connection in workers:
            connection.close()
    shadow.adopt_parts(processes, stop)
    return SplitResult(applied + supervisor.applied, [peak_mib(), *supervisor.peaks_mib])


def _replay_part(runner: ProjectionRunner, shadow: ReadStore, part: int, parts: int, stop: int, batch_size: int,
                 committed: Callable[[Changes, int], None], cancel: threading.Event | None = None) -> int:
    return runner.replay(shadow.part(part), stop, batch_size, share=share(part, parts),
                         read=share_reader(runner.app.recorder, part, parts), committed=committed, cancel=cancel)


class _Supervisor(threading.Thread):
    """Receives the workers' reports until each has said "done"; the first failure is kept in
    ``error`` and sets ``failed`` (part 0, in this process, stops at its next batch)."""

    def __init__(self, workers: list[tuple[BaseProcess, Connection]],
                 report: Callable[[int, Changes, int], None]) -> None:
        super().__init__(name="rebuild-supervisor", daemon=True)
        self.workers, self.report = workers, report
        self.failed = threading.Event()
        self.error: WorkerFailed | None = None
        self.applied = 0
        self.peaks_mib: list[float] = []

    def run(self) -> None:
        try:
            self._receive()
        except WorkerFailed as exc:
            self.error = exc
            self.failed.set()

    def _receive(self) -> None:
        running = set(range(len(self.workers)))
        while running:
            wait([self.workers[k][1] for k in running])
            for k in sorted(running):
                process, connection = self.workers[k]
                while k in running and connection.poll():
                    try:
                        message = connection.recv()
                    except (EOFError, OSError):  # gone without "done"
                        process.join(5)
                        raise WorkerFailed(f"rebuild worker {k + 1} exited (code {process.exitcode})") from None
                    if message[0] == "committed":
                        self.report(k + 1, Changes(damaged=list(message[2])), message[1])
                    elif message[0] == "done":
                        self.applied += message[1]
                        self.peaks_mib.append(message[2])
                        running.discard(k)
                    else:
                        raise WorkerFailed(f"rebuild worker {k + 1}: {message[1]}")


def _work(recipe: Callable[[], ProjectionRunner], part: int, parts: int, stop: int, batch_size: int,
          connection: Connection) -> None:
    """A worker process: its part of the aggregates into the shadow's tables."""
    lock = threading.Lock()  # the writer thread reports commits, this one the end

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            connection.send(message)

    try:
        runner = recipe()
        try:
            applied = _replay_part(runner, runner.store.shadow(create=False), part, parts, stop, batch_size,
                                   lambda changes, position: send(("committed", position, changes.damaged)))
        finally:
            runner.app.close()
        send(("done", applied, peak_mib()))
    except BaseException as exc:
        with contextlib.suppress(Exception):
            send(("failed", f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None
    finally:
        connection.close()


def peak_mib() -> float:
    """This process's peak resident memory in MiB (``VmHWM``; ``ru_maxrss`` elsewhere)."""
    with contextlib.suppress(OSError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
