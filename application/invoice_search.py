"""Counterparty search over encrypted recipient names (Electronic Bookkeeping Act; rule book 13).

The recipient's name is personal data and is stored sealed; the read table keeps only a keyed
blind index of it: HMAC-SHA256 under a search key of the name normalised (Unicode NFKC,
case-folded, every space removed), so an auditor's query finds "株式会社 Example" and
"株式会社Ｅｘａｍｐｌｅ" alike. The index allows exact-match search only, never reveals the
name, and cannot be brute-forced from the database alone when the key is kept outside it.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata


def normalise_counterparty(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(folded.split())


class CounterpartyIndex:
    """name -> blind index (hex); equal normalised names give equal indexes."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the counterparty search key needs at least 16 bytes")
        self._key = key

    def __call__(self, name: object) -> str:
        """"" for anything but a readable name (a sealed or erased field is not searchable)."""
        if not isinstance(name, str) or name == "[erased]":
            return ""
        normalised = normalise_counterparty(name)
        if not normalised:
            return ""
        return hmac.new(self._key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
