"""A bad ``CONTRACTS_*`` value stops the real ``contracts`` command with one line on stderr naming
the variable and what is wrong, exit code 2, no traceback and never the value itself."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

CONTRACTS = Path(sys.executable).with_name("contracts")  # the console script pyproject.toml installs


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONTRACTS_")}
    clean["CONTRACTS_SQLITE_PATH"] = str(tmp_path / "c.sqlite")
    return subprocess.run([str(CONTRACTS), *args], env={**clean, **env}, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CONTRACTS_TAX_RATE", "abc", "must be a decimal number"),
        ("CONTRACTS_RETENTION_DAYS", "-1", "must be at least 0"),
        ("CONTRACTS_SUSPENSION_GRACE_DAYS", "two weeks", "must be an integer"),
        ("CONTRACTS_MASTER_KEY", base64.b64encode(b"sixteen byte key").decode(), "must be base64 of 32 random bytes"),
        ("CONTRACTS_KEY_CACHE_SECONDS", "soon", "must be a number"),
        ("CONTRACTS_PG_GROUP_COMMIT", "maybe", "must be true or false"),
        ("CONTRACTS_PG_GROUP_COMMIT_MAX_BATCH", "0", "must be at least 1"),
        ("CONTRACTS_PG_GROUP_COMMIT_LINGER_MS", "-5", "must be at least 0"),
        ("CONTRACTS_API_KEY_CACHE_SECONDS", "301", "must be at most 300"),
        ("CONTRACTS_MODE", "staging", "must be one of"),
        ("CONTRACTS_DATABASE_URL", "mysql://u:s3cr3t@db/x", "must be a postgresql://"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path: Path, variable: str, value: str,
                                                       message: str) -> None:
    done = _run(tmp_path, "keys", "list", **{variable: value})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {variable}: {message}")
    assert "Traceback" not in done.stderr and value not in done.stderr and value not in done.stdout


def test_several_bad_settings_share_the_one_line(tmp_path: Path) -> None:
    done = _run(tmp_path, "sweep", "--no-progress", CONTRACTS_TAX_RATE="abc", CONTRACTS_MASTER_KEY="not base64!")
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: CONTRACTS_TAX_RATE: must be a decimal number; "
                                   "CONTRACTS_MASTER_KEY: must be base64 of 32 random bytes")


def test_good_settings_run_the_command(tmp_path: Path) -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    done = _run(tmp_path, "keys", "list", CONTRACTS_MASTER_KEY=key, CONTRACTS_PG_GROUP_COMMIT="off",
                CONTRACTS_KEY_CACHE_SECONDS="0")
    assert done.returncode == 0, done.stderr
