"""The quick start (``contracts start``, the README's first command): a real process on a temp
folder, in sandbox mode, with sample data created through its own API; the printed key and curl
URL work; everything it writes stays under its data folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from support.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 120


def _start(folder: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_")}
    env["PYTHONPATH"] = str(ROOT)
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "start", "--port", str(port)], cwd=folder, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + READY_SECONDS
    assert server.stdout is not None
    os.set_blocking(server.stdout.fileno(), False)
    while not any(line.startswith("ready: ") for line in lines):
        assert time.monotonic() < deadline, "no ready line:\n" + "\n".join(lines)
        assert server.poll() is None, "the quick start stopped:\n" + "\n".join(lines)
        chunk = server.stdout.readline()
        if chunk:
            lines.append(chunk.rstrip("\n"))
        else:
            time.sleep(0.1)
    return server, lines


def _stop(server: subprocess.Popen[str]) -> None:
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(5)


def _get(url: str, key: str) -> Any:
    r = httpx.get(url, headers={"X-API-Key": key}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_quick_start_serves_a_sandbox_with_sample_data_and_prints_keys_and_urls(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server, lines = _start(tmp_path, port)
    try:
        text = "\n".join(lines)
        keys = dict(re.findall(r"^ {4}(billing|auditor|operator) +(\S+)$", text, re.M))
        assert set(keys) == {"billing", "auditor", "operator"}
        assert f"{base}/ui/" in text and f"{base}/docs" in text
        curl = next(line for line in lines if line.strip().startswith("curl "))
        key, url = re.findall(r"X-API-Key: (\S+)'\s+'(\S+)'", curl)[0]
        assert key == keys["auditor"] and url.startswith(base)
        assert "deadlines" in _get(url, key)
        assert _get(f"{base}/v1/clock", key)["mode"] == "sandbox"
        assert httpx.get(f"{base}/docs", timeout=10).status_code == 200
        sample = dict(re.findall(r"^ {4}(SAMPLE-\S+) +(\S+)$", text, re.M))
        assert set(sample) == {"SAMPLE-MONTHLY", "SAMPLE-ANNUAL", "SAMPLE-OVERDUE", "SAMPLE-TRIAL"}
        view = {name: _get(f"{base}/v1/contracts/{cid}", key) for name, cid in sample.items()}
        # concluded 2026-01-05 (Art. 8.1: service from the 1st of the next month), clock 2026-04-02
        assert view["SAMPLE-MONTHLY"]["state"] == "active" and view["SAMPLE-MONTHLY"]["first_month"] == "2026-02"
        assert view["SAMPLE-ANNUAL"]["billing_cycle"] == "annual" and view["SAMPLE-ANNUAL"]["state"] == "active"
        assert view["SAMPLE-TRIAL"]["state"] == "trial"
        # February's invoice is due 2026-03-31 (Art. 9.3); unpaid, it is overdue from 04-01 (Art. 9.5)
        assert len(view["SAMPLE-OVERDUE"]["overdue_invoices"]) == 1
        assert view["SAMPLE-MONTHLY"]["overdue_invoices"] == []
        invoices = _get(f"{base}/v1/contracts/{sample['SAMPLE-MONTHLY']}/invoices", key)["invoices"]
        february = next(i for i in invoices if i["period"] == "2026-02")
        assert february["outstanding"] == 0
        position = _get(f"{base}/v1/events?limit=1000", key)["next_after"]
        assert position > 0
    finally:
        _stop(server)
    written = {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*")}
    assert written == {"data"}, written  # the store, its lock and the keys: all under data/

    # a second start on the same folder prints the same keys and makes no new contracts
    server, lines = _start(tmp_path, port)
    try:
        again = dict(re.findall(r"^ {4}(billing|auditor|operator) +(\S+)$", "\n".join(lines), re.M))
        assert again == keys
        assert _get(f"{base}/v1/events?limit=1000", keys["auditor"])["next_after"] == position
    finally:
        _stop(server)
