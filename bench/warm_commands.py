"""``python -m bench.warm_commands [N]``: CPU per command on warm (cached) contracts, one client.

The append scenario gives every measurement fresh contracts, so on a slow or loaded machine most
of its commands are a contract's first load in the process; this measures the steady state of a
command instead: ``change_contractor`` N times (default 2,000) round-robin over 300 contracts
already loaded once, through the application, on a scratch database. Prints commands/s and the
CPU (``time.process_time``) per command. Used for issue 21's before/after in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from bench.data import CONTRACTOR, Generator, contract_id
from bench.harness import build, scratch_database

CONTRACTS = 300


def main(n: int) -> None:
    with scratch_database("warm") as dsn:
        services = build(dsn)
        try:
            Generator(services.app, months=1).write(dsn, CONTRACTS)
            at = datetime.now(UTC)
            for k in range(CONTRACTS):  # every contract loaded (and cached) once
                services.app.change_contractor(contract_id(k), {**CONTRACTOR, "contact_name": f"P{k}"}, at)
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(n):
                services.app.change_contractor(contract_id(i % CONTRACTS), {**CONTRACTOR, "contact_name": f"Q{i}"}, at)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"{n / wall:.0f} commands/s, CPU {cpu / n * 1000:.3f} ms per command")
        finally:
            services.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
