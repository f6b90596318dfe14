"""``python -m bench.warm_ab LEVER [--cold] [--block N] [--rounds R]``: issue 21's interleaved A/B of
one command-path lever, in one process (a loaded, shared machine moves whole runs by more than a
lever changes them; alternating blocks of commands in one process does not).

Arms, alternated (A B, then B A, ...), ``--block`` commands each (default 300), ``--rounds`` times
(default 8): A is the code without the lever (put back by a patch below), B the code as it is.
``change_contractor`` round-robin over 300 cached contracts (as ``bench.warm_commands``), or with
``--cold`` each command on a contract not yet loaded in the process (the append scenario's first
loads: every block gets its own fresh contracts).

Levers (``LEVERS``):

- ``history``: the whole history, the chain head and the keys in one statement
  (``ChainedPostgresApplicationRecorder._select_history``); A reads them in three or four;
- ``copy``: no private copy of the contract for a command (``application.aggregate_locks``; a first
  load is read past the cache, ``_stored_contract``); A copies it (``private_copy``) as before;
- ``fold``: the fold without the library's runtime ``Protocol`` check (``application.service.fold``);
  A folds with the library's ``project_aggregate``;
- ``transcoder``: stored events decoded by ``FastJSONTranscoder`` (orjson and a walk,
  ``application.transcodings``); A decodes them with the library's ``JSONTranscoder`` (its object hook).

Prints the median CPU per command (``time.process_time``) and commands/s of each arm.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.data import CONTRACTOR, Generator, contract_id
from bench.harness import build, scratch_database

CONTRACTS = 300


def _history(app: Any) -> Callable[[], None]:
    recorder = app.recorder
    recorder._select_history = lambda oid: recorder._select_shaped(oid, None, None, False, None)
    return lambda: vars(recorder).pop("_select_history", None)


def _copy(app: Any) -> Callable[[], None]:
    from application.aggregate_state import private_copy

    trusted = app._trusted
    app._trusted = lambda cls, cid: None if (c := trusted(cls, cid)) is None else private_copy(c)
    app._stored_contract = app.get_contract  # a first load cached, and a copy of it for the command

    def undo() -> None:
        vars(app).pop("_trusted", None)
        vars(app).pop("_stored_contract", None)
    return undo


def _fold(app: Any) -> Callable[[], None]:
    from eventsourcing.application import project_aggregate

    import application.service as service

    fold = service.fold
    service.fold = project_aggregate  # type: ignore[assignment]

    def undo() -> None:
        service.fold = fold
    return undo


def _transcoder(app: Any) -> Callable[[], None]:
    from eventsourcing.persistence import JSONTranscoder

    from application.audit import SealedAsDict

    mapper = app.mapper
    fast = mapper.transcoder
    library = JSONTranscoder()
    app.register_transcodings(library)
    library.register(SealedAsDict())
    mapper.transcoder = library

    def undo() -> None:
        mapper.transcoder = fast
    return undo


LEVERS: dict[str, Callable[[Any], Callable[[], None]]] = {
    "history": _history, "copy": _copy, "fold": _fold, "transcoder": _transcoder}


def main(lever: str, cold: bool, block: int, rounds: int) -> None:
    figures: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    fresh = rounds * 2 * block if cold else 0
    with scratch_database("warm_ab") as dsn:
        services = build(dsn)
        app = services.app
        try:
            Generator(app, months=1).write(dsn, CONTRACTS + fresh)
            at = datetime.now(UTC)
            for k in range(CONTRACTS):  # every contract loaded (and cached) once
                app.change_contractor(contract_id(k), {**CONTRACTOR, "contact_name": f"P{k}"}, at)
            i, next_fresh = 0, CONTRACTS
            for r in range(rounds):
                for arm in ("A", "B") if r % 2 == 0 else ("B", "A"):
                    undo = LEVERS[lever](app) if arm == "A" else (lambda: None)
                    try:
                        if cold:
                            ids = [contract_id(next_fresh + k) for k in range(block)]
                            next_fresh += block
                        else:
                            ids = [contract_id((i + k) % CONTRACTS) for k in range(block)]
                        wall, cpu = time.perf_counter(), time.process_time()
                        for cid in ids:
                            app.change_contractor(cid, {**CONTRACTOR, "contact_name": f"Q{i}"}, at)
                            i += 1
                        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    finally:
                        undo()
                    figures[arm].append((cpu / block * 1000, block / wall))
        finally:
            services.close()
    for arm, rows in figures.items():
        cpus = [c for c, _ in rows]
        each = " ".join(f"{c:.3f}" for c in cpus)
        print(f"{lever} {'cold' if cold else 'warm'} {arm}: CPU {statistics.median(cpus):.3f} ms per command "
              f"(median; {each}), {statistics.median([r for _, r in rows]):.0f} commands/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lever", choices=sorted(LEVERS))
    parser.add_argument("--cold", action="store_true", help="first loads: fresh contracts in every block")
    parser.add_argument("--block", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    main(args.lever, args.cold, args.block, args.rounds)
