"""Signed checkpoints of the hash chain (spec 13, issue 14 item 5): tamper evidence that does
not depend on the database alone.

The per-aggregate chain (``application.audit``) proves each aggregate's history is consistent
with itself, but whoever can write to the database can recompute it after an edit, cut off the
newest events, delete a whole aggregate, or renumber the global positions. A checkpoint fixes
what the log was at a moment, signed with a key kept outside the database:

- ``position``: the last global position covered, and ``events``: how many events are stored
  at or before it;
- ``log_digest``: SHA-256 over every event at or before ``position``, in position order, of
  (position, aggregate id, version, chain hash): any edit, deletion, insertion or reordering
  among the covered events changes it;
- ``segments``: the same digest per block of ``SEGMENT`` positions (with its event count), so a
  difference is located to a range of positions;
- ``heads``: every aggregate's last version and chain hash at ``position``, so a rewritten,
  truncated or deleted aggregate is named;
- ``sequence`` and ``previous``: the checkpoint's number and the digest of the one before it;
- ``signature``: Ed25519 over the canonical JSON of all of the above (``application.ports.CheckpointSigner``).

A new checkpoint is refused while the store no longer matches the previous one (it would
otherwise sign a tampered history as good). Events after the last checkpoint are covered only
by the chain itself: see ``docs/auditing.md`` for exactly what is and is not detected.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from application.ports import ChainRow, ChainStore, CheckpointSigner, CheckpointStore, CheckpointVerifier

FORMAT = "contracts-checkpoint/1"
ALGORITHM = "Ed25519"
SEGMENT = 1000
_PAGE = 1000
_NO_HASH = bytes(32)


class CheckpointError(Exception):
    """A checkpoint cannot be made or read (bad file, bad signature, tampered store)."""


# --------------------------------------------------------------------------- summary of the log


def _row_bytes(row: ChainRow) -> bytes:
    return (row.position.to_bytes(8, "big") + row.originator_id.bytes + row.version.to_bytes(8, "big")
            + (row.hash or _NO_HASH))


@dataclass
class LogSummary:
    """What a checkpoint records, computed from the stored rows up to ``position``."""

    position: int
    events: int
    log_digest: str
    segments: list[tuple[int, int, str]]  # (segment number, events, digest)
    heads: dict[uuid.UUID, tuple[int, str]]  # aggregate -> (version, chain hash)
    max_position: int = 0  # the last position stored (beyond ``position`` if events came later)


def _log_rows(store: ChainStore) -> Iterator[ChainRow]:
    after = 0
    while True:
        page = store.log_rows(after, _PAGE)
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].position


def summarise(store: ChainStore, cuts: Sequence[int | None]) -> list[LogSummary]:
    """One pass over the log in position order; a summary at each cut position (``None``: the
    last stored position). Cuts must be ascending, ``None`` last."""
    wanted = [c for c in cuts]
    summaries: list[LogSummary] = []
    digest = hashlib.sha256()
    seg_no, seg_digest, seg_events = 0, hashlib.sha256(), 0
    segments: list[tuple[int, int, str]] = []
    heads: dict[uuid.UUID, tuple[int, str]] = {}
    events, last = 0, 0

    def snapshot(position: int) -> LogSummary:
        partial = list(segments)
        if seg_events:
            partial.append((seg_no, seg_events, seg_digest.hexdigest()))
        return LogSummary(position, events, digest.hexdigest(), partial, dict(heads))

    def close_cuts_before(position: int) -> None:
        while wanted and wanted[0] is not None and wanted[0] < position:
            summaries.append(snapshot(wanted.pop(0)))  # type: ignore[arg-type]

    for row in _log_rows(store):
        close_cuts_before(row.position)
        number = (row.position - 1) // SEGMENT
        if number != seg_no and seg_events:
            segments.append((seg_no, seg_events, seg_digest.hexdigest()))
            seg_digest, seg_events = hashlib.sha256(), 0
        seg_no = number
        data = _row_bytes(row)
        digest.update(data)
        seg_digest.update(data)
        seg_events += 1
        events += 1
        last = row.position
        head = heads.get(row.originator_id)
        if head is None or head[0] < row.version:
            heads[row.originator_id] = (row.version, (row.hash or _NO_HASH).hex())
    close_cuts_before(last + 1)
    while wanted:
        cut = wanted.pop(0)
        summaries.append(snapshot(last if cut is None else cut))
    for s in summaries:
        s.max_position = last
    return summaries


# --------------------------------------------------------------------------- documents


def canonical(document: Mapping[str, Any]) -> bytes:
    """The signed bytes: the document without its signature, as sorted, compact JSON."""
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def document_digest(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(document) + document.get("signature", "").encode()).hexdigest()


def _document(summary: LogSummary, store_label: str, created_at: datetime, sequence: int,
              previous: str | None, public_key: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "store": store_label,
        "created_at": created_at.isoformat(),
        "sequence": sequence,
        "previous": previous,
        "position": summary.position,
        "events": summary.events,
        "log_digest": summary.log_digest,
        "segment_size": SEGMENT,
        "segments": [[n, count, d] for n, count, d in summary.segments],
        "heads": {str(oid): [version, h] for oid, (version, h) in sorted(summary.heads.items(),
                                                                        key=lambda item: str(item[0]))},
        "algorithm": ALGORITHM,
        "public_key": public_key,
    }


def parse(text: str) -> dict[str, Any]:
    """A checkpoint document from its JSON (an exported file or a stored row)."""
    try:
        document = json.loads(text)
    except ValueError:
        raise CheckpointError("the checkpoint is not JSON") from None
    required = ("format", "position", "events", "log_digest", "segments", "heads", "signature", "sequence")
    if not isinstance(document, dict) or document.get("format") != FORMAT or any(k not in document for k in required):
        raise CheckpointError(f"not a {FORMAT} document")
    return document


def check_signature(document: Mapping[str, Any], verifier: CheckpointVerifier) -> None:
    """Raise unless ``document`` was signed by the key behind ``verifier`` (a key the auditor
    trusts, never the public key written in the document itself)."""
    try:
        signature = base64.b64decode(str(document.get("signature", "")), validate=True)
    except ValueError:
        raise CheckpointError("the checkpoint's signature is not base64") from None
    if not verifier.verify(canonical(document), signature):
        raise CheckpointError("the checkpoint's signature does not verify with the trusted public key "
                              "(altered checkpoint, or signed by another key)")


# --------------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class Difference:
    """One way the store differs from a checkpoint. ``aggregate_id`` / ``positions`` locate it."""

    kind: str  # edited | truncated | deleted | inserted | reordered | log
    reason: str
    aggregate_id: uuid.UUID | None = None
    positions: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason,
                "aggregate_id": str(self.aggregate_id) if self.aggregate_id else None,
                "positions": list(self.positions) if self.positions else None}


@dataclass
class CheckpointReport:
    ok: bool
    sequence: int
    position: int
    events: int
    differences: list[Difference] = field(default_factory=list)
    after_checkpoint: int = 0  # events stored after the checkpoint's position (not covered by it)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "sequence": self.sequence, "position": self.position, "events": self.events,
                "differences": [d.to_dict() for d in self.differences],
                "events_after_checkpoint": self.after_checkpoint}


def compare(document: Mapping[str, Any], summary: LogSummary, max_differences: int = 100) -> list[Difference]:
    """How the stored log (``summary`` at the checkpoint's position) differs from ``document``."""
    found: list[Difference] = []
    heads: dict[str, list[Any]] = document["heads"]
    aggregate_problem = False
    for oid_text, (version, digest) in heads.items():
        oid = uuid.UUID(oid_text)
        now = summary.heads.get(oid)
        if now is None:
            found.append(Difference("deleted", f"aggregate {oid} (version {version} at the checkpoint) is no longer "
                                    "stored: deleted", oid))
        elif now[0] < version:
            found.append(Difference("truncated", f"aggregate {oid} ends at version {now[0]}, the checkpoint has "
                                    f"version {version}: newer events deleted", oid))
        elif now[0] > version:
            found.append(Difference("inserted", f"aggregate {oid} has version {now[0]} at or before the checkpoint's "
                                    f"position, the checkpoint has version {version}: events inserted", oid))
        elif now[1] != digest:
            found.append(Difference("edited", f"aggregate {oid}: the chain hash of version {version} differs from "
                                    "the checkpoint: its history was rewritten (hashes recomputed)", oid))
        else:
            continue
        aggregate_problem = True
    for oid, (version, _) in summary.heads.items():
        if str(oid) not in heads:
            found.append(Difference("inserted", f"aggregate {oid} (version {version}) is stored at positions the "
                                    "checkpoint covers but is not in it: inserted", oid))
            aggregate_problem = True
    if summary.max_position < int(document["position"]):
        found.append(Difference("truncated", f"the log ends at position {summary.max_position}, before the "
                                f"checkpoint's position {document['position']}: newest events deleted"))
    if summary.events != int(document["events"]):
        found.append(Difference("log", f"{document['events']} events at or before position {document['position']} "
                                f"at the checkpoint, {summary.events} now"))
    size = int(document.get("segment_size", SEGMENT))
    then = {int(n): (int(count), d) for n, count, d in document["segments"]}
    now_segments = {n: (count, d) for n, count, d in summary.segments}
    for n in sorted(set(then) | set(now_segments)):
        if then.get(n) != now_segments.get(n):
            first, last = n * size + 1, min((n + 1) * size, int(document["position"]))
            count_then = then.get(n, (0, ""))[0]
            count_now = now_segments.get(n, (0, ""))[0]
            kind = "log" if aggregate_problem else "reordered"
            reason = (f"positions {first}..{last}: {count_then} events at the checkpoint, {count_now} now, contents "
                      "differ" if aggregate_problem or count_then != count_now else
                      f"positions {first}..{last}: the same events of every aggregate, in another global order "
                      "(positions swapped or renumbered)")
            found.append(Difference(kind, reason, None, (first, last)))
    if summary.log_digest != document["log_digest"] and not found:
        found.append(Difference("log", "the digest of the log up to the checkpoint's position differs"))
    return found[:max_differences]


def verify_against(store: ChainStore, document: Mapping[str, Any], verifier: CheckpointVerifier) -> CheckpointReport:
    """Check the signature, then compare the stored log with the checkpoint."""
    check_signature(document, verifier)
    (summary,) = summarise(store, [int(document["position"])])
    differences = compare(document, summary)
    return CheckpointReport(not differences, int(document["sequence"]), int(document["position"]),
                            int(document["events"]), differences,
                            max(0, summary.max_position - int(document["position"])) if summary.max_position else 0)


def make_checkpoint(store: ChainStore, checkpoints: CheckpointStore, signer: CheckpointSigner, store_label: str,
                    now: datetime, verifier: CheckpointVerifier | None = None) -> dict[str, Any]:
    """Sign a checkpoint of the log as it is now and keep it in ``checkpoints``.

    Refused (``CheckpointError``) when the store no longer matches the previous checkpoint, so a
    tampered history is never signed as good. ``verifier`` checks the previous checkpoint's
    signature (default: the signer's own key)."""
    previous = checkpoints.latest()
    cuts: list[int | None] = [int(previous["position"])] if previous is not None else []
    summaries = summarise(store, [*cuts, None])
    if previous is not None:
        if verifier is not None:
            check_signature(previous, verifier)
        differences = compare(previous, summaries[0])
        if differences:
            raise CheckpointError(f"the store no longer matches checkpoint {previous['sequence']}: "
                                  f"{differences[0].reason} (and {len(differences) - 1} more); "
                                  "run 'contracts audit verify' — no new checkpoint was signed")
    summary = summaries[-1]
    sequence = int(previous["sequence"]) + 1 if previous is not None else 1
    document = _document(summary, store_label, now, sequence,
                         document_digest(previous) if previous is not None else None, signer.public_key)
    document["signature"] = base64.b64encode(signer.sign(canonical(document))).decode("ascii")
    checkpoints.add(document)
    return document


def dumps(document: Mapping[str, Any]) -> str:
    """The exported file's text (what an auditor keeps)."""
    return json.dumps(document, indent=1, sort_keys=True) + "\n"
