"""Spec 11: every read model rebuilt from the event stream alone equals what incremental updating
produced, for hypothesis-generated histories; and the projection agrees with the aggregate."""

from __future__ import annotations

import dataclasses
import gc
import json
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from histories import ACTIONS, History, Step, random_steps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.collector import resting_thresholds
from application.projections.projector import Projector
from application.projections.state import ContractProjection
from domain.billing import Ledger
from domain.calendar import Month
from domain.contract import Contract
from infrastructure.bootstrap import Services, build_read_models, build_services
from infrastructure.read_side import ReadModelsImpl, RebuildFailed
from infrastructure.settings import Settings

steps = st.lists(st.builds(Step, st.sampled_from(ACTIONS), st.integers(0, 3), st.integers(0, 8),
                           st.integers(0, 10**6)), min_size=40, max_size=120)
batching = st.lists(st.tuples(st.integers(1, 7), st.booleans()), min_size=1, max_size=8)


def play_incrementally(services: Services, models: ReadModelsImpl, history: list[Step],
                       batching: list[tuple[int, bool]], prefix: str = "H") -> None:
    """After each step apply a few small batches; sometimes forget the cached states (as after a
    restart) so the stored per-contract state is read back."""
    world = History(services.app, prefix)
    for i, step in enumerate(history):
        world.play(step)
        size, forget = batching[i % len(batching)]
        if forget:
            models.runner.projector.reset()
        models.runner.run_once(limit=size)
    models.runner.catch_up()


def assert_agrees_with_aggregates(services: Services, models: ReadModelsImpl) -> None:
    """Invoices equal the aggregate's own Ledger; pending claims carry the aggregate's assessment;
    the next month start deadline is the aggregate's ``next_month_start``."""
    app = services.app
    for cid in models.contract_ids():
        c: Contract = app.get_contract(cid)
        mine = [{k: v for k, v in i.items() if k not in ("late_interest", "interest_as_of")}
                for i in models.invoices(cid)]
        theirs = [i.to_dict() for i in sorted(c.ledger.invoices.values(), key=lambda i: (i.month, i.kind, i.period))]
        assert mine == theirs
        for claim in models.claims(cid):
            if claim["status"] == "pending":
                a = c.assess(uuid.UUID(claim["claim_id"]), app.policy)
                assert (claim["eligible"], claim["reason"], claim["minimum"], claim["maximum"],
                        claim["credit_days"]) == (a.eligible, a.reason, a.minimum, a.maximum, a.credit_days)
        doc = models.store.state_doc(cid)
        assert doc is not None
        state = ContractProjection.from_json(doc)
        assert state.to_json() == doc  # the stored state round-trips
        for f in dataclasses.fields(Ledger):
            if f.name != "invoices":
                assert getattr(state.ledger, f.name) == getattr(c.ledger, f.name), f.name
        t = state.timeline
        assert (t.state, t.trial_ends_on, t.first_month, t.period_end, t.termination_month, t.suspension_stop_on,
                t.retention_until, t.data_deleted, t.stored_data_deleted, t.last_invoiced_on) == (
            c.state.value, c.trial_ends_on, c.first_month, c.period_end, c.termination_month, c.suspension_stop_on,
            c.retention_until, c.data_deleted, c.stored_data_deleted_on is not None, c.last_invoice_on())
        assert t.owed() == c.owed()
        assert t.overdue == {str(i) for i in c.overdue}
        assert set(t.undecided_claims) == {str(k) for k, v in c.claims.items() if v.decided is None}
        starts = [d.ref for d in models.deadlines_until(Month(2100, 1).first_day)
                  if d.aggregate_id == cid and d.kind == "month_start"]
        nxt = c.next_month_start()
        assert starts == ([] if nxt is None else [str(nxt)])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=steps, batching=batching)
def test_rebuild_equals_incremental_for_generated_histories(history: list[Step],
                                                            batching: list[tuple[int, bool]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(database_url=None, sqlite_path=Path(tmp) / "h.sqlite"))
        try:
            models = build_read_models(services)
            play_incrementally(services, models, history, batching)
            incremental = models.store.dump()
            assert incremental["tracking"] == [(services.app.recorder.max_notification_id(),)]
            assert_agrees_with_aggregates(services, models)
            models.runner.rebuild(progress=False, batch_size=1000)
            assert models.store.dump() == incremental
        finally:
            services.close()


@pytest.mark.postgres
def test_rebuild_equals_incremental_on_postgres(pg_services: Services) -> None:
    models = build_read_models(pg_services)
    rng = random.Random(20260401)
    history = random_steps(rng, 300)
    batching = [(rng.randint(1, 9), rng.random() < 0.2) for _ in range(17)]
    play_incrementally(pg_services, models, history, batching)
    incremental = models.store.dump()
    assert len(incremental["rm_event_times"]) > 100
    assert_agrees_with_aggregates(pg_services, models)
    models.runner.rebuild(progress=False, batch_size=37)
    assert models.store.dump() == incremental


def _cut_short(services: Services, position: int) -> None:
    """Cut the stored JSON of the event at ``position`` in half (a damaged row), on either store."""
    recorder: Any = services.app.recorder
    stored = recorder.select_notifications(start=position, limit=1)[0]
    half = bytes(stored.state)[: len(stored.state) // 2]
    if hasattr(recorder, "events_table_name") and "sqlite" not in type(recorder).__module__:
        with recorder.datastore.transaction(commit=True) as cur:
            table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
            cur.execute(f"UPDATE {table} SET state = %s WHERE notification_id = %s", (half, position))
    else:
        with recorder.datastore.transaction(commit=True) as cur:
            cur.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (half, position))


def test_issue14_a_rebuild_is_atomic_and_stops_only_the_damaged_contract(services: Services) -> None:
    """A rebuild builds beside the live tables and swaps them in; failing half-way, it leaves them as
    they were. An event that does not decode stops its own contract only (issue 14, item 4)."""
    models = build_read_models(services)
    rng = random.Random(14)
    play_incrementally(services, models, random_steps(rng, 80), [(5, False)])
    live = models.store.dump()
    original = Projector.process
    calls = {"n": 0}

    def failing(self: Projector, batch: Any, source: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("injected")
        return original(self, batch, source)

    Projector.process = failing  # type: ignore[method-assign]
    try:
        with pytest.raises(RebuildFailed, match="live read tables are unchanged"):
            models.runner.rebuild(progress=False, batch_size=3)
    finally:
        Projector.process = original  # type: ignore[method-assign]
    assert models.store.dump() == live
    assert models.runner.catch_up() == 0  # the live position did not move either

    # damage one event of one contract: the rebuild completes, that contract stops at the damage
    victim = models.contract_ids()[0]
    events = [n for n in services.app.recorder.select_notifications(start=1, limit=10_000)
              if uuid.UUID(str(n.originator_id)) == victim]
    assert len(events) >= 3
    damaged = events[2]
    _cut_short(services, damaged.id)
    models.runner.rebuild(progress=False, batch_size=4)
    rebuilt = models.store.dump()
    not_applied = models.damaged_events()
    assert [(d.position, d.aggregate_id, d.version) for d in not_applied] == [
        (n.id, victim, n.originator_version) for n in events[2:]]
    assert "not valid JSON" in not_applied[0].reason
    others = {t: [r for r in rows if str(victim) not in map(str, r)] for t, rows in live.items() if t != "tracking"}
    assert {t: [r for r in rows if str(victim) not in map(str, r)] for t, rows in rebuilt.items()
            if t != "tracking" and t != "rm_damaged"} == {t: v for t, v in others.items() if t != "rm_damaged"}
    assert rebuilt["tracking"] == live["tracking"]
    state = ContractProjection.from_json(models.store.state_doc(victim) or "")
    assert state.version == 2  # the two events before the damaged one


def test_a_rebuild_relaxes_the_collector_only_while_it_runs(services: Services) -> None:
    """Issue 21: a rebuild allocates millions of short-lived objects; the cyclic collector's default
    thresholds cost ~20 % of its CPU, so it raises them while it runs and restores them after,
    whether it succeeds or fails. The runner does the same for each live batch."""
    models = build_read_models(services)
    play_incrementally(services, models, random_steps(random.Random(21), 40), [(5, False)])
    world = History(services.app, "Gc")
    for step in random_steps(random.Random(17), 20):
        world.play(step)
    before = resting_thresholds()  # not a runner batch's relaxed reading
    seen: list[tuple[int, int, int]] = []
    original = Projector.process

    def watching(self: Projector, batch: Any, source: Any) -> Any:
        seen.append(gc.get_threshold())
        return original(self, batch, source)

    Projector.process = watching  # type: ignore[method-assign]
    try:
        assert models.runner.run_once(limit=5) == 5
        assert seen and seen[0][0] > before[0]
        assert resting_thresholds() == before
        models.runner.rebuild(progress=False, batch_size=10)
        assert seen and all(t[0] > before[0] for t in seen)
        assert resting_thresholds() == before

        def failing(self: Projector, batch: Any, source: Any) -> Any:
            raise RuntimeError("injected")

        Projector.process = failing  # type: ignore[method-assign]
        with pytest.raises(RebuildFailed):
            models.runner.rebuild(progress=False, batch_size=10)
        assert resting_thresholds() == before
    finally:
        Projector.process = original  # type: ignore[method-assign]


@pytest.mark.postgres
def test_a_rebuild_on_postgres_leaves_the_live_tables_named_and_indexed_as_before(pg_services: Services) -> None:
    """The swap renames the rebuilt tables into place (issue 21: no copy of every row): afterwards the
    schema holds the same tables and indexes under the same names and definitions, no ``rb_`` table
    is left, and the store (its pooled connections and prepared statements) reads and writes them."""
    models = build_read_models(pg_services)
    play_incrementally(pg_services, models, random_steps(random.Random(7), 60), [(4, False)])
    schema = pg_services.app.recorder.datastore.schema  # type: ignore[attr-defined]

    def catalog() -> tuple[list[tuple[str, str]], list[str]]:
        with pg_services.app.recorder.datastore.transaction(commit=False) as cur:  # type: ignore[attr-defined]
            cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename LIKE %s "
                        "ORDER BY indexname", (schema, "r%"))
            indexes = [(r["indexname"], r["indexdef"]) for r in cur.fetchall()]
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,))
            return indexes, [r["tablename"] for r in cur.fetchall()]

    before = catalog()
    live = models.store.dump()
    models.runner.rebuild(progress=False, batch_size=25)
    after = catalog()
    assert set(after[0]) - set(before[0]) == set() and set(before[0]) - set(after[0]) == set()
    assert after == before
    assert not [t for t in before[1] if t.startswith("rb_")]
    assert models.store.dump() == live
    world = History(pg_services.app, "After")  # the runner goes on writing the renamed tables
    for step in random_steps(random.Random(8), 10):
        world.play(step)
    assert models.runner.catch_up() > 0
    assert len(models.store.dump()["rm_event_times"]) > len(live["rm_event_times"])


@pytest.mark.parametrize("failing_commit", [False, True])
def test_a_pipelined_rebuild_reads_back_only_what_its_pending_commits_wrote(services: Services,
                                                                            failing_commit: bool) -> None:
    """Issue 21: a rebuild commits each batch on a writer thread while it folds the next. With a
    projector that caches one contract (every other state and invoice is read back from the
    rebuilt tables) and commits slowed down, every read must still see the rows of the batches
    before it: the result equals the incremental tables. A commit that fails stops the rebuild and
    leaves the live tables as they were."""
    models = build_read_models(services)
    play_incrementally(services, models, random_steps(random.Random(2112), 120), [(6, False), (2, True)])
    live = models.store.dump()
    runner = models.runner
    runner.projector = Projector(runner.projector.policy, cache_size=1,
                                 counterparty_index=runner.projector.counterparty_index)
    store_type = type(models.store)
    original = store_type.commit
    commits = {"n": 0}

    def slow(self: Any, changes: Any, previous: int, position: int) -> None:
        if self.tracking_name.endswith(".rebuild"):
            commits["n"] += 1
            time.sleep(0.01)
            if failing_commit and commits["n"] == 5:
                raise RuntimeError("injected")
        original(self, changes, previous, position)

    store_type.commit = slow  # type: ignore[method-assign]
    try:
        if failing_commit:
            with pytest.raises(RebuildFailed, match="live read tables are unchanged"):
                runner.rebuild(progress=False, batch_size=4)
        else:
            runner.rebuild(progress=False, batch_size=4)
    finally:
        store_type.commit = original  # type: ignore[method-assign]
    assert commits["n"] >= 5
    assert models.store.dump() == live


def test_stored_documents_are_the_canonical_json_of_the_standard_library(services: Services) -> None:
    """The state, claim and invoice documents are written with orjson (issue 21), as the same text the
    standard library writes (``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
    for the documents, insertion order for the lines): documents written before stay equal."""
    models = build_read_models(services)
    play_incrementally(services, models, random_steps(random.Random(5), 120), [(3, False)])
    tables = models.store.dump()

    def canonical(text: str, sort: bool = True) -> str:
        return json.dumps(json.loads(text), sort_keys=sort, separators=(",", ":"), ensure_ascii=False)

    docs = [row[-2] for row in tables["rm_contracts"]] + [row[-1] for row in tables["rm_claims"]]
    invoices = tables["rm_invoices"]
    assert docs and invoices
    assert all(doc == canonical(doc) for doc in docs)
    assert all(row[11] == canonical(row[11], sort=False) and row[15] == canonical(row[15]) for row in invoices)
