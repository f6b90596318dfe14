"""One list envelope for every list (Stripe style): ``object: "list"``, ``data``, ``has_more`` and
``next_cursor`` (pass it as ``starting_after`` for the next page), with a bounded ``limit``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import Query

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size (default {DEFAULT_LIMIT}, "
                                                                f"at most {MAX_LIMIT})")]


def envelope(items: Sequence[dict[str, Any]], limit: int, cursor_of: Callable[[dict[str, Any]], Any],
             url: str) -> dict[str, Any]:
    """``items``: up to ``limit + 1`` items in cursor order (one more than a page tells whether
    there are more)."""
    data = list(items[:limit])
    has_more = len(items) > limit
    return {"object": "list", "url": url, "data": data, "has_more": has_more,
            "next_cursor": cursor_of(data[-1]) if has_more and data else None}


def after(items: Sequence[dict[str, Any]], key: str, starting_after: Any) -> list[dict[str, Any]]:
    """The items after the one whose ``key`` is ``starting_after`` (all of them without a cursor)."""
    if starting_after is None:
        return list(items)
    text = str(starting_after)
    for index, item in enumerate(items):
        if str(item.get(key)) == text:
            return list(items[index + 1:])
    return [item for item in items if str(item.get(key)) > text]
