"""The hash chain as written: one link per stored event, chained to the previous event of
the same aggregate (``application.audit.chain_hash`` over the stored, sealed bytes).

The previous hash is taken from the same batch, else from a small in-process cache of
chain heads, else read in the inserting transaction. The cache is safe across processes:
a head is only used when its version is exactly the one before the event being written,
and a committed (aggregate, version) row never changes.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence

from eventsourcing.persistence import DataError, PersistenceError, ProgrammingError, StoredEvent

from application.audit import GENESIS, chain_hash

Link = tuple[uuid.UUID, int, bytes]
PrevFetcher = Callable[[list[tuple[uuid.UUID, int]]], dict[tuple[uuid.UUID, int], bytes]]


class ChainBroken(PersistenceError):
    """The previous link of an event being written is missing: the chain was tampered with."""


class UnchainableEvent(DataError):
    """An event the hash chain has no link for: the chain starts at version 1 (the first version of
    the library's aggregates, ``application.audit.GENESIS`` before it), so a version below 1 is
    refused, in the insert's transaction, before anything is stored."""


def refuse_text_ids(originator_id_type: str) -> None:
    """The chain, the key store and the audit read originator ids as UUIDs: text ids are refused."""
    if originator_id_type != "uuid":
        raise ProgrammingError(f"ORIGINATOR_ID_TYPE={originator_id_type!r}: the hash chain and the per-contract "
                               "keys need UUID originator ids; only 'uuid' is supported")


class ChainLinker:
    def __init__(self, max_heads: int = 100_000) -> None:
        self._heads: OrderedDict[uuid.UUID, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_heads = max_heads

    def link(self, stored_events: Sequence[StoredEvent], fetch: PrevFetcher) -> list[Link]:
        for e in stored_events:
            if e.originator_version < 1:
                raise UnchainableEvent(f"event of {e.originator_id} at version {e.originator_version} refused: "
                                       "the hash chain starts at version 1")
        ordered = sorted(stored_events, key=lambda e: e.originator_version)
        in_batch = {(_oid(e), e.originator_version) for e in ordered}
        known: dict[tuple[uuid.UUID, int], bytes] = {}
        need: list[tuple[uuid.UUID, int]] = []
        with self._lock:
            for e in ordered:
                oid, prev_version = _oid(e), e.originator_version - 1
                if prev_version < 1 or (oid, prev_version) in in_batch:
                    continue
                head = self._heads.get(oid)
                if head is not None and head[0] == prev_version:
                    known[(oid, prev_version)] = head[1]
                else:
                    need.append((oid, prev_version))
        if need:
            known.update(fetch(need))
        links: list[Link] = []
        for e in ordered:
            oid, version = _oid(e), e.originator_version
            prev = GENESIS if version == 1 else known.get((oid, version - 1))
            if prev is None:
                raise ChainBroken(f"hash chain of {oid}: no hash recorded for version {version - 1}; "
                                  "run 'contracts audit verify'")
            digest = chain_hash(prev, oid, version, e.topic, e.state)
            known[(oid, version)] = digest
            links.append((oid, version, digest))
        return links

    def remember(self, links: Sequence[Link]) -> None:
        """Called after the inserting transaction committed."""
        with self._lock:
            for oid, version, digest in links:
                head = self._heads.get(oid)
                if head is None or head[0] < version:
                    self._heads[oid] = (version, digest)
                    self._heads.move_to_end(oid)
            while len(self._heads) > self.max_heads:
                self._heads.popitem(last=False)


def _oid(e: StoredEvent) -> uuid.UUID:
    oid = e.originator_id
    return oid if isinstance(oid, uuid.UUID) else uuid.UUID(str(oid))
