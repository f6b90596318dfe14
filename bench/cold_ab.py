"""``python -m bench.cold_ab LEVER [--block N] [--rounds R] [--clients C]``: issue 21's interleaved
A/B of one lever on COLD commands (each command a contract's first load in the process, as bench
s1 at 4 and 16 clients: read, decode and open the sealed fields, fold, save), measuring the CPU per
command of this process AND of the PostgreSQL backends serving it (``/proc/PID/schedstat`` of every
backend connected to the scratch database: PostgreSQL runs on the same machine).

Arms alternated (A B, then B A, ...), ``--block`` commands each (default 400), ``--rounds`` times
(default 10): A is the code without the lever (put back by a patch below), B the code as it is.
Every block gets its own fresh contracts (``change_contractor``, as ``bench.s1_append``); with
``--clients C`` the block is shared by C threads (group commit batches their saves).

Levers (``LEVERS``):

- ``binary``: a first load's one read (``ChainedPostgresApplicationRecorder._select_history``) in
  the binary wire format (bytea as is, not hex text); A reads it in text.
- ``tuple``: a save's one statement (``_insert_in_one_statement``) fetches its notification ids as
  tuple rows; A as dict rows (whose maker reads the result's column names on every execute).
- ``none``: A and B the same code (the harness's own noise).

Prints each arm's median CPU per command (client, PostgreSQL, total) and every block's figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.data import CONTRACTOR, Generator, contract_id
from bench.harness import build, scratch_database


def _binary(app: Any) -> Callable[[], None]:
    recorder = app.recorder
    recorder.history_binary = False
    return lambda: vars(recorder).pop("history_binary", None)


def _tuple(app: Any) -> Callable[[], None]:
    import types

    from infrastructure.persistence import packed_arrays as packed

    recorder = app.recorder

    def insert(self: Any, stored_events: Any) -> list[int]:  # the code before the lever
        links = self.linker.link(stored_events, self._prev_hashes_read)
        by_key = {(oid, version): digest for oid, version, digest in links}
        ids, versions, topics, states, hashes = [], [], [], [], []
        for e in stored_events:
            oid = e.originator_id
            ids.append(oid)
            versions.append(e.originator_version)
            topics.append(e.topic)
            states.append(e.state)
            hashes.append(by_key[(oid, e.originator_version)])
        params = (packed.uuids(ids), packed.bigints(versions), packed.texts(topics), packed.byteas(states),
                  packed.byteas(hashes))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.insert_function_query, params, prepare=True)
            notification_ids = [row["id"] for row in curs.fetchall()]
        self.linker.remember(links)
        return notification_ids

    recorder._insert_in_one_statement = types.MethodType(insert, recorder)
    return lambda: vars(recorder).pop("_insert_in_one_statement", None)


def _none(app: Any) -> Callable[[], None]:
    return lambda: None


LEVERS: dict[str, Callable[[Any], Callable[[], None]]] = {"binary": _binary, "tuple": _tuple, "none": _none}


def _backend_cpu(dsn: str) -> float:
    """CPU seconds (user + system) of every backend connected to the database of ``dsn``, but this
    query's own."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND pid <> pg_backend_pid()").fetchall()]
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as f:  # time on a CPU, in ns (stat's ticks are 10 ms)
                total += int(f.read().split()[0]) / 1e9
        except OSError:
            continue
    return total


def _run_block(app: Any, ids: list[Any], clients: int, at: datetime) -> None:
    def work(part: list[Any], tag: int) -> None:
        for n, cid in enumerate(part):
            app.change_contractor(cid, {**CONTRACTOR, "contact_name": f"Q{tag}-{n}"}, at)
    if clients == 1:
        work(ids, 0)
        return
    threads = [threading.Thread(target=work, args=(ids[i::clients], i)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main(lever: str, block: int, rounds: int, clients: int) -> None:
    figures: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    with scratch_database("cold_ab") as dsn:
        services = build(dsn)
        app = services.app
        try:
            Generator(app, months=1).write(dsn, 100 + rounds * 2 * block)
            at = datetime.now(UTC)
            _run_block(app, [contract_id(k) for k in range(100)], clients, at)  # connections made, code warm
            next_fresh = 100
            for r in range(rounds):
                for arm in ("A", "B") if r % 2 == 0 else ("B", "A"):
                    undo = LEVERS[lever](app) if arm == "A" else (lambda: None)
                    try:
                        ids = [contract_id(next_fresh + k) for k in range(block)]
                        next_fresh += block
                        pg, cpu = _backend_cpu(dsn), time.process_time()
                        _run_block(app, ids, clients, at)
                        cpu, pg = time.process_time() - cpu, _backend_cpu(dsn) - pg
                    finally:
                        undo()
                    figures[arm].append((cpu / block * 1000, pg / block * 1000))
        finally:
            services.close()
    print(f"{lever}, {clients} client(s), {rounds} rounds of {block} cold commands per arm, "
          f"load {os.getloadavg()[0]:.1f}")
    for arm, rows in figures.items():
        client = [c for c, _ in rows]
        server = [p for _, p in rows]
        total = [c + p for c, p in rows]
        print(f"{arm}: CPU per command client {statistics.median(client):.3f} ms, PostgreSQL "
              f"{statistics.median(server):.3f} ms, total {statistics.median(total):.3f} ms (medians)")
        print(f"   client {' '.join(f'{c:.3f}' for c in client)}")
        print(f"   postgres {' '.join(f'{p:.3f}' for p in server)}")
    pairs = list(zip(figures["A"], figures["B"], strict=True))
    lower = sum(1 for a, b in pairs if b[0] < a[0])
    print(f"B's client CPU lower in {lower} of {len(pairs)} pairs; total lower in "
          f"{sum(1 for a, b in pairs if sum(b) < sum(a))} of {len(pairs)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lever", choices=sorted(LEVERS))
    parser.add_argument("--block", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=1)
    args = parser.parse_args()
    main(args.lever, args.block, args.rounds, args.clients)
