"""``python -m bench.warm_ab [BLOCK] [ROUNDS]``: issue 21's interleaved A/B of the write-path
levers on warm commands, in one process (a loaded, shared machine moves whole runs by more than
a lever changes them; alternating blocks of commands in one process does not).

Arms, alternated (A P B, then B P A, ...), ``BLOCK`` commands each (default 300), ``ROUNDS``
times (default 10), on 300 cached contracts as in ``bench.warm_commands``:

- A: the write's arrays adapted by psycopg (plain lists), the library's ``collect_events``;
- P: the arrays packed (``infrastructure.persistence.packed_arrays``);
- B: packed, and ``ContractsApplication.save``'s own collection (``application.service._Collected``).

Prints the median CPU per command (``time.process_time``) and commands/s of each arm.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import ProcessingEvent

import application.service as service
import infrastructure.persistence.packed_arrays as packed
from bench.data import CONTRACTOR, Generator, contract_id
from bench.harness import build, scratch_database

CONTRACTS = 300
_PACKERS = ("uuids", "bigints", "texts", "byteas")


def main(block: int, rounds: int) -> None:
    packers: dict[str, Callable[..., Any]] = {name: getattr(packed, name) for name in _PACKERS}
    collected = service._Collected
    figures: dict[str, list[tuple[float, float]]] = {"A": [], "P": [], "B": []}
    with scratch_database("warm_ab") as dsn:
        services = build(dsn)
        try:
            Generator(services.app, months=1).write(dsn, CONTRACTS)
            at = datetime.now(UTC)
            for k in range(CONTRACTS):  # every contract loaded (and cached) once
                services.app.change_contractor(contract_id(k), {**CONTRACTOR, "contact_name": f"P{k}"}, at)
            i = 0
            for r in range(rounds):
                for arm in ("A", "P", "B") if r % 2 == 0 else ("B", "P", "A"):
                    for name in _PACKERS:
                        setattr(packed, name, list if arm == "A" else packers[name])
                    service._Collected = ProcessingEvent if arm in "AP" else collected  # type: ignore[misc]
                    wall, cpu = time.perf_counter(), time.process_time()
                    for _ in range(block):
                        services.app.change_contractor(contract_id(i % CONTRACTS),
                                                       {**CONTRACTOR, "contact_name": f"Q{i}"}, at)
                        i += 1
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    figures[arm].append((cpu / block * 1000, block / wall))
        finally:
            for name in _PACKERS:
                setattr(packed, name, packers[name])
            service._Collected = collected  # type: ignore[misc]
            services.close()
    for arm, rows in figures.items():
        cpus = [c for c, _ in rows]
        each = " ".join(f"{c:.3f}" for c in cpus)
        print(f"{arm}: CPU {statistics.median(cpus):.3f} ms per command (median; {each}), "
              f"{statistics.median([r for _, r in rows]):.0f} commands/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300, int(sys.argv[2]) if len(sys.argv) > 2 else 10)
