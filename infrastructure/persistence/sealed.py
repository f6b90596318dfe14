"""What both audited factories (SQLite, PostgreSQL) add to the library's: the per-contract key
store and the personal-data mapper; snapshots are refused (they would store personal data in clear)."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Mapper, Transcoder

from infrastructure.personal_data import PersonalDataMapper, cache_seconds_from_env, master_key_from_env


class SealedFactoryMixin:
    keys: Any

    def _open_key_store(self, key_store_class: type[Any]) -> None:
        factory: Any = self
        if factory.is_snapshotting_enabled():
            raise OSError("snapshots would store personal data in clear: IS_SNAPSHOTTING_ENABLED is not supported")
        self.keys = key_store_class(factory.datastore, master_key_from_env(factory.env),
                                    cache_seconds_from_env(factory.env))
        if factory.env_create_table():
            self.keys.create_table()

    def mapper(self, transcoder: Transcoder | None = None,
               mapper_class: type[Mapper[Any]] | None = None) -> Mapper[Any]:
        factory: Any = self
        return PersonalDataMapper(transcoder or factory.transcoder(), factory.compressor(), factory.cipher(),
                                  keys=self.keys)
