"""Checkpoints wired to settings: the signer from ``CONTRACTS_CHECKPOINT_KEY``, the trusted
public key, the table next to the events and the export folder ``CONTRACTS_CHECKPOINT_DIR``.
Used by ``contracts audit checkpoint`` / ``verify`` and by the scheduler (every
``CONTRACTS_CHECKPOINT_INTERVAL_MINUTES`` on the leader)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from application import checkpoints
from application.ports import ChainStore
from infrastructure.checkpoint_keys import Ed25519Signer, Ed25519Verifier
from infrastructure.checkpoint_store import build_checkpoint_store
from infrastructure.settings import Settings

logger = logging.getLogger(__name__)


class CheckpointsUnavailable(Exception):
    """No key is configured for what was asked (signing or verifying)."""


def signer_from(settings: Settings) -> Ed25519Signer:
    if settings.checkpoint_key is None:
        raise CheckpointsUnavailable("CONTRACTS_CHECKPOINT_KEY is not set: no checkpoint can be signed "
                                     "(make a key with 'contracts audit checkpoint-key')")
    return Ed25519Signer(settings.checkpoint_key.get_secret_value())


def verifier_from(settings: Settings, public_key: str | None = None) -> Ed25519Verifier | Ed25519Signer:
    """The trusted key: ``--public-key``, else ``CONTRACTS_CHECKPOINT_PUBLIC_KEY``, else the
    public half of ``CONTRACTS_CHECKPOINT_KEY``. Never the key written in a checkpoint."""
    if public_key:
        return Ed25519Verifier(public_key)
    if settings.checkpoint_public_key:
        return Ed25519Verifier(settings.checkpoint_public_key)
    if settings.checkpoint_key is not None:
        return Ed25519Signer(settings.checkpoint_key.get_secret_value())
    raise CheckpointsUnavailable("no trusted public key: pass --public-key or set CONTRACTS_CHECKPOINT_PUBLIC_KEY "
                                 "(or CONTRACTS_CHECKPOINT_KEY)")


def chain_store_of(app: Any) -> ChainStore:
    recorder = app.recorder
    if not isinstance(recorder, ChainStore):
        raise CheckpointsUnavailable("this store keeps no hash chain")
    return recorder


def write_file(document: Mapping[str, Any], directory: Path) -> Path:
    """``<dir>/checkpoint-<sequence>-<position>.json``, written atomically (temp file, rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"checkpoint-{int(document['sequence']):06d}-{int(document['position'])}.json"
    temp = target.with_suffix(".json.tmp")
    temp.write_text(checkpoints.dumps(document), encoding="utf-8")
    os.replace(temp, target)
    return target


def make_checkpoint(services: Any, now: datetime | None = None, out: Path | None = None) -> dict[str, Any]:
    """Sign and store a checkpoint now; also write it to ``CONTRACTS_CHECKPOINT_DIR`` and ``out``."""
    settings: Settings = services.settings
    signer = signer_from(settings)
    store = build_checkpoint_store(services.app.env)
    document = checkpoints.make_checkpoint(chain_store_of(services.app), store, signer, settings.database_label(),
                                           now or datetime.now(UTC), verifier_from(settings))
    if settings.checkpoint_dir is not None:
        write_file(document, settings.checkpoint_dir)
    if out is not None:
        out.write_text(checkpoints.dumps(document), encoding="utf-8")
    logger.info("checkpoint %d signed: %d events up to position %d", document["sequence"], document["events"],
                document["position"])
    return document


def latest_checkpoint(services: Any) -> dict[str, Any] | None:
    return build_checkpoint_store(services.app.env).latest()


def periodic_checkpointer(services: Any) -> Callable[[], None] | None:
    """The scheduler's job (None when no key is configured or the interval is 0). Never raises:
    a refusal (the store no longer matches the last checkpoint) is logged as an error."""
    settings: Settings = services.settings
    if settings.checkpoint_key is None or settings.checkpoint_interval_minutes == 0:
        return None

    def run() -> None:
        try:
            make_checkpoint(services)
        except checkpoints.CheckpointError as exc:
            logger.error("checkpoint refused: %s", exc)
        except Exception as exc:  # noqa: BLE001 - the next run tries again
            logger.warning("checkpoint failed (%s); the next run tries again", type(exc).__name__)
    return run
