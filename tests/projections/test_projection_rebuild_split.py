"""Issue 21: a rebuild split across worker processes by aggregate gives, row for row, the tables a
rebuild in one process gives (and the incrementally built ones), installs the log's last position,
and a worker that fails or dies fails the whole rebuild with the live tables untouched. SQLite and
PostgreSQL."""

from __future__ import annotations

import multiprocessing
import random
import uuid
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import Notification
from histories import History, random_steps
from projection_kit import jst
from rebuild_kit import FailingWorker
from test_projection_rebuild import _cut_short

from infrastructure.bootstrap import Services, build_read_models, build_services
from infrastructure.read_side import ReadModelsImpl, RebuildFailed
from infrastructure.read_store.common import TRACKING_NAME
from infrastructure.rebuild_split import share
from infrastructure.settings import Settings, SettingsError, load_settings

CONTRACTS = 12


def _history(services: Services, models: ReadModelsImpl, steps: int = 300) -> History:
    """Twelve contracts over ``steps`` random steps (invoices, payments, claims, notices, erasures ...),
    two bank transfers (one applied, one reversed) and a service discontinuation, projected in
    small batches."""
    app = services.app
    world = History(app, "Split", contracts=CONTRACTS)
    for i, step in enumerate(random_steps(random.Random(2121), steps, contracts=CONTRACTS)):
        world.play(step)
        if i % 4 == 3:
            models.runner.projector.reset()  # as after a restart: states read back from the tables
        models.runner.run_once(limit=1 + i % 8)
    applied = app.receive_transfer(None, "ﾌﾒｲ", "REF-1", 5_000, date(2026, 5, 20), jst(2026, 5, 25)).transfer.id
    reversed_ = app.receive_transfer(None, "ﾌﾒｲ", "REF-2", 7_000, date(2026, 5, 21), jst(2026, 5, 25)).transfer.id
    app.apply_unapplied(applied, "Split-0", jst(2026, 5, 26))
    app.reverse_transfer(reversed_, "bounced", date(2026, 5, 26), jst(2026, 5, 26))
    app.announce_discontinuation("garoon", date(2027, 6, 30), jst(2026, 5, 26))
    models.runner.catch_up()
    return world


def _tracking_rows(services: Services) -> list[str]:
    """The read models' tracking rows (SQLite's tracking table holds other keys too)."""
    return [name for name in _tracking_names(services) if name.startswith(TRACKING_NAME)]


def _tracking_names(services: Services) -> list[str]:
    recorder: Any = services.app.recorder
    with recorder.datastore.transaction(commit=False) as cur:
        if "sqlite" in type(recorder).__module__:
            cur.execute("SELECT application_name FROM tracking ORDER BY application_name")
            return [row[0] for row in cur.fetchall()]
        cur.execute(f'SELECT application_name FROM "{recorder.datastore.schema}".read_models_tracking '
                    "ORDER BY application_name")
        return [row["application_name"] for row in cur.fetchall()]


def _tables(services: Services) -> list[str]:
    recorder: Any = services.app.recorder
    with recorder.datastore.transaction(commit=False) as cur:
        if "sqlite" in type(recorder).__module__:
            cur.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            return [row[0] for row in cur.fetchall()]
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename",
                    (recorder.datastore.schema,))
        return [row["tablename"] for row in cur.fetchall()]


def test_a_split_rebuild_equals_a_rebuild_in_one_process(services: Services) -> None:
    models = build_read_models(services)
    world = _history(services, models)
    assert len({cid.bytes[15] % 2 for cid in world.contracts}) == 2  # both parts have contracts to fold
    incremental = models.store.dump()
    last = services.app.recorder.max_notification_id()
    assert incremental["tracking"] == [(last,)] and len(incremental["rm_event_times"]) == last
    assert incremental["rm_transfers"] and incremental["rm_claims"] and incremental["rm_payments"]

    applied = models.runner.rebuild(progress=False, batch_size=7, processes=2)
    assert applied == last  # every event applied once, by the worker owning its aggregate
    assert len(models.runner.worker_peaks_mib) == 2  # this process and one worker did it
    assert models.store.dump() == incremental
    assert _tracking_rows(services) == [TRACKING_NAME]  # the parts' tracking rows are gone
    assert not [t for t in _tables(services) if t.startswith("rb_")]

    # one damaged event: the contract stops there in both rebuilds alike (issue 14)
    victim = world.contracts[3]
    events = [n for n in services.app.recorder.select_notifications(start=1, limit=100_000)
              if uuid.UUID(str(n.originator_id)) == victim]
    _cut_short(services, events[3].id)
    models.runner.rebuild(progress=False, batch_size=11, processes=1)
    assert models.runner.worker_peaks_mib == []  # one process
    sequential = models.store.dump()
    assert [row[0] for row in sequential["rm_damaged"]] == [n.id for n in events[3:]]
    models.runner.rebuild(progress=False, batch_size=11, processes=3)
    assert len(models.runner.worker_peaks_mib) == 3  # this process and two workers
    assert models.store.dump() == sequential

    # the runner goes on from the installed position
    for step in random_steps(random.Random(8), 20, contracts=CONTRACTS):
        if step.contract != 3:  # the damaged one no longer loads
            world.play(step)
    assert models.runner.catch_up() == services.app.recorder.max_notification_id() - last


@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failed_worker_fails_the_split_rebuild_and_leaves_the_live_tables(services: Services, how: str) -> None:
    models = build_read_models(services)
    world = _history(services, models, steps=120)
    live = models.store.dump()
    runner = models.runner
    assert runner.worker_recipe is not None
    counts = Counter(uuid.UUID(str(n.originator_id))
                     for n in services.app.recorder.select_notifications(start=1, limit=100_000))
    spawned = share(1, 2)  # part 0 is this process's: the recipe builds the spawned worker's runner
    victim = max((cid for cid in world.contracts
                  if spawned(Notification(id=0, originator_id=cid, originator_version=1, topic="", state=b""))),
                 key=lambda cid: counts[cid])
    assert counts[victim] > 10  # in several batches of 5: its worker fails at the second
    runner.worker_recipe = FailingWorker(runner.worker_recipe, victim, how)
    with pytest.raises(RebuildFailed, match="live read tables are unchanged") as failed:
        runner.rebuild(progress=False, batch_size=5, processes=2)
    assert "WorkerFailed" in str(failed.value)
    assert not multiprocessing.active_children()  # the other worker was stopped too
    assert models.store.dump() == live
    assert _tracking_rows(services) == [TRACKING_NAME]
    assert not [t for t in _tables(services) if t.startswith("rb_")]
    assert runner.catch_up() == 0  # the live position did not move either


def test_the_process_count_is_a_validated_setting_and_small_logs_use_one(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().rebuild_processes == 1  # the default: two parts tied one on the quiet bench
    with pytest.raises(SettingsError, match="CONTRACTS_REBUILD_PROCESSES"):
        load_settings(rebuild_processes=0)
    monkeypatch.setenv("CONTRACTS_REBUILD_PROCESSES", "3")
    settings = load_settings(database_url=None, sqlite_path=tmp_path / "s.sqlite")
    assert settings.rebuild_processes == 3
    services = build_services(settings)
    try:
        models = build_read_models(services)
        assert models.runner.rebuild_processes == 3
        _history(services, models)
        live = models.store.dump()
        assert models.runner.rebuild(progress=False) == services.app.recorder.max_notification_id()
        assert models.runner.worker_peaks_mib == []  # under ``rebuild_split_from`` events: this process alone
        assert models.store.dump() == live
    finally:
        services.close()
    memory = build_services(Settings(database_url=None), env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                                                             "SQLITE_DBNAME": ":memory:"})
    try:
        assert build_read_models(memory).runner.worker_recipe is None  # no other process opens it
    finally:
        memory.close()
