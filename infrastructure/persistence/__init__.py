"""Persistence modules for ``PERSISTENCE_MODULE``: the library's SQLite and PostgreSQL
recorders plus a per-aggregate hash chain (``event_hashes``) written in the insert's own
transaction, per-contract keys (``contract_keys``) and the personal-data mapper.

* ``infrastructure.persistence.sqlite_factory``
* ``infrastructure.persistence.postgres_factory``
"""
