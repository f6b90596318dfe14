"""Unauthenticated log injection (issue 14, item 7).

The attack: while the database cannot be reached, a request whose path holds a percent-encoded
newline followed by a fake log line (``/v1/contracts/x%0A<timestamp> CRITICAL api: ...``) was
logged decoded in the 503 warning, and the fake line stood in the log as a record of its own.

Against a live ``contracts serve`` whose database stops accepting connections (its connection
limit set to 0 and its sessions terminated: the shared server itself is not touched), the attack
is sent with an unknown key (refused in the auth middleware, before routing) and with a valid key
(refused in a route); the log must hold no forged line and no raw client path. A record whose
message or arguments hold control characters is written escaped, on one line.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from reliability_kit import Deployment, assert_problem, record_figures

from infrastructure.log_safety import FORMAT, EscapeControls, RepeatLimiter

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

FORGED = "2019-01-01 00:00:00,000 CRITICAL api: forged record"
PAYLOADS = ("%0A" + FORGED.replace(" ", "%20"), "%0D%0A" + FORGED.replace(" ", "%20"),
            "%E2%80%A8" + FORGED.replace(" ", "%20"), "%1B%5B2J%0A" + FORGED.replace(" ", "%20"))


def _close_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT 0')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND pid <> pg_backend_pid()", (name,))


def _open_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT -1')


def test_a_percent_encoded_newline_in_the_path_forges_no_log_line(scratch_url: str, tmp_path: Path) -> None:
    deployment = Deployment(scratch_url, tmp_path, mode="production")
    key = deployment.create_key("billing", "injection-client")
    api = deployment.api(with_projections=True)
    sent = 0
    try:
        api.start_ready()
        with httpx.Client(base_url=api.base, timeout=20) as http:
            assert http.get("/v1/events", headers={"X-API-Key": key}).status_code == 200  # the key is now cached
            _close_database(scratch_url)
            time.sleep(0.5)
            for payload in PAYLOADS:
                for headers in ({"X-API-Key": "ck_" + uuid.uuid4().hex}, {"X-API-Key": key}):
                    r = http.get(f"/v1/contracts/{uuid.uuid4()}{payload}", headers=headers)
                    sent += 1
                    if r.status_code == 503:
                        assert_problem(r, 503)
    finally:
        _open_database(scratch_url)
        deployment.stop_all()
    log = (tmp_path / "api.log").read_text(errors="replace")
    assert "answered 503" in log, log[-2000:]
    lines = log.splitlines()
    assert not [line for line in lines if line.startswith("2019-01-01 00:00:00")], "a forged line is in the log"
    refusals = [line for line in lines if "answered 503" in line]
    assert refusals and not [line for line in refusals if "forged" in line or "%0A" in line], refusals[:4]
    assert "\u2028" not in log and "\x1b" not in log
    record_figures("log_injection", {"requests": sent, "forged_lines": 0, "log_lines": len(lines)})


def test_every_record_is_one_line_with_its_controls_escaped() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RepeatLimiter(3, 60.0))
    handler.addFilter(EscapeControls())
    logger = logging.getLogger("reliability.injection")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("path %s refused", "/x\n" + FORGED + "\r\n\x1b[2J\u2028\x00")
        try:
            raise ValueError("bad\n" + FORGED)
        except ValueError:
            logger.exception("failed on %s", "/y\n" + FORGED)
        for _ in range(10):  # a flood of one message: 3 written, 7 counted
            logger.error("socket.accept() out of system resource: %s", "[Errno 24] Too many open files")
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert not [line for line in lines if line.startswith(FORGED[:10])], lines
    assert "\\x0a" + FORGED + "\\x0d\\x0a\\x1b[2J\\u2028\\x00" in lines[0], lines[0]
    assert all(not line or line[0].isdigit() or line.startswith("    ") for line in lines), [
        line for line in lines if line and not (line[0].isdigit() or line.startswith("    "))]
    assert sum("Too many open files" in line for line in lines) == 3
