"""JSON response bodies, encoded by orjson (issue 21: ``json.dumps`` was a sixth of a GET's server time).

``dumps`` writes the text Starlette's ``JSONResponse`` writes (``json.dumps`` with
``ensure_ascii=False``, no spaces, UTF-8). orjson is handed only what both encode alike: for
anything it would write differently or refuse (an integer beyond 64 bits, a lone surrogate, a
non-string key, a ``datetime``, a dataclass, a subclass of a JSON type) it raises, and ``json``
writes the value, or refuses it, as before. (The one value orjson writes that Starlette
refused is a NaN or infinite float: orjson writes ``null``; nothing here answers floats.)
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSONResponse

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: what orjson does not write as json does
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


class JSONResponse(_StarletteJSONResponse):
    """Starlette's ``JSONResponse``, rendered by ``dumps``."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
