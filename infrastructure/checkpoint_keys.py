"""The checkpoint signing key (``CONTRACTS_CHECKPOINT_KEY``) and its public half, with Ed25519
from ``cryptography``: the service signs with the private key, kept outside the database; an
auditor verifies with the public key alone (``CONTRACTS_CHECKPOINT_PUBLIC_KEY`` or
``--public-key``), so the verifier cannot forge checkpoints either (docs/decisions.md).
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def _raw32(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip().replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} must be base64 of 32 bytes") from None
    if len(raw) != 32:
        raise ValueError(f"{what} must be base64 of 32 bytes")
    return raw


class Ed25519Signer:
    """``application.checkpoints.Signer`` (and ``Verifier``) from the private key's 32 raw bytes."""

    def __init__(self, private_key_b64: str) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(_raw32(private_key_b64, "CONTRACTS_CHECKPOINT_KEY"))
        self._verifier = Ed25519Verifier(public_key_of(self._key))

    @property
    def public_key(self) -> str:
        return self._verifier.public_key

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def verify(self, data: bytes, signature: bytes) -> bool:
        return self._verifier.verify(data, signature)


class Ed25519Verifier:
    """``application.checkpoints.Verifier`` from a public key (base64 of its 32 raw bytes)."""

    def __init__(self, public_key_b64: str) -> None:
        self._raw = _raw32(public_key_b64, "the checkpoint public key")
        self._key = Ed25519PublicKey.from_public_bytes(self._raw)

    @property
    def public_key(self) -> str:
        return base64.b64encode(self._raw).decode("ascii")

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


def public_key_of(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def new_private_key() -> str:
    """A fresh key for ``CONTRACTS_CHECKPOINT_KEY`` (``contracts audit checkpoint-key``)."""
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    key = Ed25519PrivateKey.generate()
    return base64.b64encode(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())).decode("ascii")
