"""Spec 13: the scheduler signs a checkpoint of the chain periodically, on the leader only, when
CONTRACTS_CHECKPOINT_KEY is set (every CONTRACTS_CHECKPOINT_INTERVAL_MINUTES)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from scheduler_kit import jst

from application.clock import FixedClock
from application.sweep import SweepReport
from infrastructure.bootstrap import build_scheduler, build_services
from infrastructure.checkpoint_keys import new_private_key
from infrastructure.checkpointing import latest_checkpoint, periodic_checkpointer
from infrastructure.scheduler import DeadlineScheduler, InProcessLock
from infrastructure.settings import Settings

DAY = date(2026, 3, 2)


class _NeverLeader(InProcessLock):
    def acquire(self) -> bool:
        return False

    def still_held(self) -> bool:
        return False


def test_spec_13_the_leader_signs_checkpoints_periodically_and_exports_them(tmp_path: Path) -> None:
    settings = Settings(sqlite_path=tmp_path / "c.sqlite", database_url=None, checkpoint_key=new_private_key(),
                        checkpoint_interval_minutes=30, checkpoint_dir=tmp_path / "exported")
    services = build_services(settings)
    try:
        services.app.open_contract("C-CP", "kintone", "standard", 10, {"name": "CP K.K."}, jst(2026, 3, 2),
                                   trial=True)
        scheduler = build_scheduler(services, read_models=None, clock=FixedClock(jst(2026, 3, 2)),  # type: ignore[arg-type]
                                    lock=InProcessLock())
        ((job_id, _, job, seconds),) = scheduler.leader_jobs
        assert (job_id, seconds) == ("audit-checkpoint", 1800.0)
        run = scheduler.run_if_leader(job)
        run()  # not the leader yet (no tick has run): nothing signed
        assert latest_checkpoint(services) is None
        scheduler.sweep = lambda should_stop: SweepReport(DAY, DAY)  # type: ignore[assignment]
        scheduler.tick()  # becomes the leader
        run()
        first = latest_checkpoint(services)
        # Opened, TrialStarted; the customer account's Opened, ContractRegistered (rule book 7)
        assert first is not None and first["sequence"] == 1 and first["events"] == 4
        assert [p.name for p in (tmp_path / "exported").iterdir()] == [f"checkpoint-000001-{first['position']}.json"]
        run()
        second = latest_checkpoint(services)
        assert second is not None and second["sequence"] == 2
    finally:
        services.close()


def test_spec_13_no_checkpoint_job_without_a_key_or_with_interval_0(tmp_path: Path) -> None:
    for settings in (Settings(sqlite_path=tmp_path / "a.sqlite", database_url=None),
                     Settings(sqlite_path=tmp_path / "b.sqlite", database_url=None, checkpoint_key=new_private_key(),
                              checkpoint_interval_minutes=0)):
        services = build_services(settings)
        try:
            assert periodic_checkpointer(services) is None
        finally:
            services.close()


def test_spec_13_a_follower_signs_nothing(tmp_path: Path) -> None:
    settings = Settings(sqlite_path=tmp_path / "f.sqlite", database_url=None, checkpoint_key=new_private_key())
    services = build_services(settings)
    try:
        scheduler = DeadlineScheduler(lambda should_stop: SweepReport(DAY, DAY), _NeverLeader())
        job = periodic_checkpointer(services)
        assert job is not None
        scheduler.tick()
        scheduler.run_if_leader(job)()
        assert latest_checkpoint(services) is None
    finally:
        services.close()
