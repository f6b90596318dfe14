"""Persistence modules for ``PERSISTENCE_MODULE``: the library's SQLite and PostgreSQL
recorders plus a per-aggregate hash chain (``event_hashes``) written in the insert's own
transaction, per-contract keys (``contract_keys``) and the personal-data mapper.

* ``infrastructure.persistence.sqlite_factory`` (factory and recorders)
* ``infrastructure.persistence.postgres_factory`` (factory), ``postgres_recorder`` (the chained
  recorders) and ``group_commit`` (concurrent inserts combined into one transaction)

Every recorder adds its work through the library's ``_insert_events`` hook (as the library's
``examples/searchabletimestamps``) and keeps the library's ``insert_events``: its retry, its
error translation and its table lock.
"""
