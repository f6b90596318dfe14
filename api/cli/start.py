"""``contracts start [--data DIR] [--port N]``: the quick start that serves.

The HTTP API (with the projection runner and the scheduler in the process, as ``contracts serve``)
on the embedded SQLite store in ``DIR`` (default ``./data``, ignored by git) in **sandbox mode**.
On the first start (no API key in the store) it makes one key per role, keeps them in
``DIR/sandbox-keys.json`` (a sandbox convenience: keys of a real deployment are shown once and
never written down) and creates the sample contracts of ``api.cli.sample_data`` through its own
HTTP API. Every start prints the keys, the URLs and a ``curl`` line, then ``ready``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from api.cli.sample_data import Client, SampleDataError, create_sample_data
from application.api_keys import ROLES, create_key
from infrastructure.settings import Settings

log = logging.getLogger("contracts.start")
KEYS_FILE = "sandbox-keys.json"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("start", help="quick start: serve a sandbox with sample data and print keys and URLs")
    p.add_argument("--data", type=Path, default=Path("data"),
                   help="folder of the sandbox store and its keys (default: ./data)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    p.set_defaults(func=_run)


def sandbox_settings(settings: Settings, data: Path) -> Settings:
    """The quick start's settings: the embedded store in ``data``, sandbox mode."""
    return settings.model_copy(update={"sqlite_path": data / "contracts.sqlite", "database_url": None,
                                       "mode": "sandbox"})


def _keys(store: object, data: Path) -> tuple[dict[str, str], bool]:
    """The sandbox's keys (made now when the store has none) and whether they are new."""
    path = data / KEYS_FILE
    if path.exists():
        return dict(json.loads(path.read_text())), False
    if store.list_keys():  # type: ignore[attr-defined]
        raise SystemExit(f"error: the store in {data} has API keys but {path} is missing; "
                         "make one with `contracts keys create` or start on an empty --data folder")
    now = datetime.now(UTC)
    keys = {role: create_key(store, role, f"sandbox-{role}", now) for role in ROLES}  # type: ignore[arg-type]
    path.write_text(json.dumps(keys, indent=2) + "\n")
    path.chmod(0o600)
    return keys, True


def banner(base: str, keys: dict[str, str], data: Path, sample: dict[str, str] | None) -> list[str]:
    lines = ["", "Contract lifecycle service: sandbox on the embedded SQLite store",
             f"  data folder   {data}/ (delete it to start over)", "  API keys (header X-API-Key):"]
    lines += [f"    {role:<9} {key}" for role, key in keys.items()]
    if sample:
        lines.append("  sample contracts (created through the API, clock at 2026-04-02 JST):")
        lines += [f"    {customer:<15} {cid}" for customer, cid in sample.items()]
    lines += [f"  pages         {base}/ui/  (log in with the auditor or operator key)",
              f"  API docs      {base}/docs",
              "  try:",
              f"    curl -H 'X-API-Key: {keys['auditor']}' '{base}/v1/deadlines?until=2026-12-31'",
              f"ready: {base}", ""]
    return lines


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from api.cli.serve import build_served_app, uvicorn_options
    from infrastructure.bootstrap import build_api_store, persistence_env

    data: Path = args.data.resolve()
    data.mkdir(parents=True, exist_ok=True)
    settings = sandbox_settings(args.settings, data)
    store = build_api_store(persistence_env(settings))
    try:
        store.setup()
        keys, fresh = _keys(store, data)
    finally:
        store.close()
    app, close = build_served_app(settings)
    # as serve runs it: uvicorn's own access log (raw path, client address) off, ours on
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, **uvicorn_options(settings)))
    base = f"http://{args.host}:{args.port}"
    failed: list[str] = []

    def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.05)
        sample = None
        if fresh:
            try:
                sample = create_sample_data(Client(base, keys))
                (data / "sample-contracts.json").write_text(json.dumps(sample, indent=2) + "\n")
            except (SampleDataError, OSError) as exc:
                failed.append(str(exc))
                print(f"error: creating the sample data failed: {exc}", file=sys.stderr, flush=True)
                server.should_exit = True
                return
        elif (data / "sample-contracts.json").exists():
            sample = json.loads((data / "sample-contracts.json").read_text())
        print("\n".join(banner(base, keys, data, sample)), flush=True)

    threading.Thread(target=announce, name="quick-start", daemon=True).start()
    try:
        server.run()
    finally:
        close()
    return 1 if failed else 0
