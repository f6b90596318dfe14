"""``PERSISTENCE_MODULE=infrastructure.persistence.postgres_factory``: the library's
PostgreSQL store with the hash chain, per-contract keys and the personal-data mapper.

Tables (in ``POSTGRES_SCHEMA``): ``contracts_events`` (the library's),
``contracts_event_hashes`` (one chain hash per event) and ``contract_keys``.

The recorders are in ``postgres_recorder`` (the hash chain, through the library's
``_insert_events`` hook) and ``group_commit`` (concurrent inserts combined into one
transaction). ``POSTGRES_ENABLE_DB_FUNCTIONS`` is refused: that path bypasses the hook.
"""

from __future__ import annotations

import eventsourcing.postgres as es_pg
from eventsourcing.persistence import ApplicationRecorder, ProcessRecorder
from eventsourcing.utils import Environment, EnvType, strtobool

from infrastructure.persistence.group_commit import GroupCommitPostgresApplicationRecorder, group_commit_settings
from infrastructure.persistence.pool_health import heal_on_failure
from infrastructure.persistence.postgres_recorder import (
    ChainedPostgresApplicationRecorder,
    ChainedPostgresProcessRecorder,
)
from infrastructure.persistence.sealed import SealedFactoryMixin
from infrastructure.personal_data import PostgresKeyStore

SCHEMA_MIGRATED = "SCHEMA_MIGRATED"  # env (CONTRACTS_SCHEMA_MIGRATED): set by the bootstrap after migrating


class Factory(SealedFactoryMixin, es_pg.PostgresFactory):
    """The one factory class of this module (``InfrastructureFactory.construct`` finds it)."""

    application_recorder_class = ChainedPostgresApplicationRecorder
    process_recorder_class = ChainedPostgresProcessRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        if self.datastore.enable_db_functions:
            raise OSError("POSTGRES_ENABLE_DB_FUNCTIONS bypasses the hash chain: not supported")
        heal_on_failure(self.datastore)  # a lost connection has the pool checked at once (issue 14)
        self._open_key_store(PostgresKeyStore)

    def application_recorder(self) -> ApplicationRecorder:
        prefix = self.env.name.lower() or "stored"
        group_commit, max_batch, linger = group_commit_settings(self.env)  # issue 7: PG_GROUP_COMMIT, default on
        recorder: ChainedPostgresApplicationRecorder = (
            GroupCommitPostgresApplicationRecorder(self.datastore, events_table_name=prefix + "_events",
                                                   keys=self.keys, max_batch=max_batch, linger=linger)
            if group_commit else
            ChainedPostgresApplicationRecorder(self.datastore, events_table_name=prefix + "_events", keys=self.keys))
        if self.env_create_table():
            recorder.create_table()
        return recorder

    def process_recorder(self) -> ProcessRecorder:
        """The library's process recorder with the hash chain (no event is stored unchained)."""
        recorder = ChainedPostgresProcessRecorder(
            self.datastore, events_table_name=(self.env.name.lower() or "stored") + "_events",
            tracking_table_name=(self.env.name.lower() or "notification") + "_tracking", keys=self.keys)
        if self.env_create_table():
            recorder.create_table()
        return recorder

    def env_create_table(self) -> bool:
        """No table is created (events, keys, read tables, webhook tables) once the schema migration
        (``infrastructure.schema``) created them all under its advisory lock: beside another process
        starting at once, the library's ``CREATE OR REPLACE FUNCTION`` fails ("tuple concurrently
        updated") and two ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` deadlock (each takes the
        table's exclusive lock even when the column exists), issue 14."""
        return super().env_create_table() and not strtobool(self.env.get(SCHEMA_MIGRATED) or "no")
