"""``contracts snapshots take`` (issue 7): the off-hot-path job stores the missing snapshots of
every contract the read side knows, and is idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from psycopg.conninfo import conninfo_to_dict
from support.postgres import create_scratch_database, drop_database

from api.cli import main
from infrastructure import snapshots as snap
from infrastructure.bootstrap import build_read_models, build_services
from infrastructure.settings import Settings

pytestmark = pytest.mark.postgres


def test_snapshots_take_command(pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                ) -> None:
    dsn = create_scratch_database(pg_dsn)
    parts = conninfo_to_dict(dsn)
    url = (f"postgresql://{parts.get('user', 'postgres')}@{parts.get('host', '127.0.0.1')}:"
           f"{parts.get('port', 5432)}/{parts['dbname']}")
    try:
        monkeypatch.setenv("CONTRACTS_DATABASE_URL", url)
        services = build_services(Settings())
        at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
        cid = services.app.open_contract("CUST-SNAP-CLI", "kintone", "standard", 10, {"name": "Snap K.K."}, at,
                                         trial=True).aggregate_id  # Opened + TrialStarted = versions 1, 2
        for n in range(20):  # versions 3..22
            services.app.change_contractor(cid, {"name": f"Snap {n} K.K."}, at + timedelta(minutes=n))
        build_read_models(services).runner.catch_up()
        assert main(["snapshots", "take", "--no-progress"]) == 0
        assert "2 snapshots stored for 1 contracts" in capsys.readouterr().out  # versions 10 and 20
        assert main(["snapshots", "take", "--no-progress"]) == 0
        assert "0 snapshots stored" in capsys.readouterr().out
        store = snap.open_snapshots(services.app)
        assert store is not None  # the latest snapshot at or before a version: 10 for 15, 20 for 22
        assert [s.originator_version for s in store.get(cid, lte=15)] == [10]
        assert [s.originator_version for s in store.get(cid, lte=22)] == [20]
        services.close()
    finally:
        drop_database(pg_dsn, dsn)
