"""``contracts snapshots take``: the off-hot-path job that stores sealed snapshots for as-of reads
(infrastructure.snapshots). Run it periodically (cron, a systemd timer); commands never need it."""

from __future__ import annotations

import argparse

from tqdm import tqdm

from api.cli import emit, json_flag
from infrastructure.bootstrap import build_read_models, build_services
from infrastructure.snapshots import SNAPSHOT_EVERY, open_snapshots


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("snapshots", help="sealed snapshots for fast as-of reads (PostgreSQL)")
    cmds = p.add_subparsers(dest="snapshots_command", required=True)
    take = cmds.add_parser("take", help="store missing snapshots of every contract the read side knows")
    take.add_argument("--every", type=int, default=SNAPSHOT_EVERY, help=f"versions apart (default {SNAPSHOT_EVERY})")
    take.add_argument("--no-progress", action="store_true", help="no progress bar")
    json_flag(take)
    take.set_defaults(func=_take)


def _take(args: argparse.Namespace) -> int:
    services = build_services(args.settings)
    try:
        store = open_snapshots(services.app)
        if store is None:
            emit(args, {"available": False, "taken": 0, "contracts": 0},
                 "snapshots are not available on this store (PostgreSQL only); as-of reads replay events")
            return 0
        ids = build_read_models(services).contract_ids()
        taken = sum(store.take(cid, args.every)
                    for cid in tqdm(ids, unit="contract", disable=args.no_progress or args.json))
        emit(args, {"available": True, "taken": taken, "contracts": len(ids)},
             f"{taken} snapshots stored for {len(ids)} contracts")
        return 0
    finally:
        services.close()
