"""``contracts keys``: create, list and revoke API keys (stored hashed in table ``api_keys``)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from application.api_keys import ROLES, create_key
from application.ports import ApiStore, KeyNameTaken
from infrastructure.bootstrap import build_api_store, persistence_env
from infrastructure.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("keys", help="manage API keys (billing, auditor, operator)")
    keys = p.add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key and print it once (only its hash is stored)")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="who holds the key (unique; names the caller in logs)")
    create.set_defaults(func=_create)
    listing = keys.add_parser("list", help="list keys (names, roles, dates; never the keys)")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(func=_list)
    revoke = keys.add_parser("revoke", help="revoke the key with this name")
    revoke.add_argument("--name", required=True)
    revoke.set_defaults(func=_revoke)


def _store(settings: Settings) -> ApiStore:
    store = build_api_store(persistence_env(settings))
    store.setup()
    return store


def _create(args: argparse.Namespace) -> int:
    store = _store(args.settings)
    try:
        key = create_key(store, args.role, args.name, datetime.now(UTC))
    except (KeyNameTaken, ValueError) as exc:
        print(f"error: {'a key named ' + args.name + ' already exists' if isinstance(exc, KeyNameTaken) else exc}",
              file=sys.stderr)
        return 2
    finally:
        store.close()
    print(key)
    print(f"(role {args.role}, name {args.name}: store it now, it is not shown again)", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store(args.settings)
    try:
        found = store.list_keys()
        if args.json:
            print(json.dumps([{"name": k.name, "role": k.role, "created_at": k.created_at.isoformat(),
                               "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None} for k in found]))
            return 0
        for k in found:
            revoked = f"revoked {k.revoked_at.isoformat()}" if k.revoked_at else "active"
            print(f"{k.name}\t{k.role}\tcreated {k.created_at.isoformat()}\t{revoked}")
    finally:
        store.close()
    return 0


def _revoke(args: argparse.Namespace) -> int:
    store = _store(args.settings)
    try:
        if not store.revoke_key(args.name, datetime.now(UTC)):
            print(f"error: no active key named {args.name}", file=sys.stderr)
            return 2
    finally:
        store.close()
    print(f"revoked {args.name}")
    return 0
