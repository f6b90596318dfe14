"""Folds over an aggregate's events dispatch on the event *class*, never on its name.

A fold lists, for each event class of the aggregate, the handler that folds it, and the
classes it ignores on purpose. The table refers to the classes themselves
(``Contract.Applied``), so renaming or removing an event class fails at the first fold,
and ``tests/domain/test_rules_event_folds.py`` checks that every event class of the
Contract aggregate is either handled or ignored by every fold.

The table is built on first use: the Contract aggregate imports the billing Ledger (it folds
it inside its own events), so the Ledger's table can only name ``Contract``'s event classes
once ``domain.contract`` is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

F = TypeVar("F")
Handler = Callable[[F, Any], None]


def event_class(aggregate: type, name: str) -> type[Any]:
    """The event class ``name`` that ``@event`` made on ``aggregate``, typed for dispatch (a
    missing one fails at import)."""
    cls = vars(aggregate)[name]
    if not (isinstance(cls, type) and issubclass(cls, vars(aggregate)["Event"])):
        raise TypeError(f"{aggregate.__name__}.{name} is not an event class")
    return cls


class UnhandledEvent(TypeError):
    """An event class that a fold neither handles nor ignores: a new or renamed event."""


class Dispatch(Generic[F]):
    """``handlers()`` returns (handlers by event class, classes ignored on purpose)."""

    def __init__(self, fold: str, handlers: Callable[[], tuple[Mapping[type, Handler[F]], Iterable[type]]]
                 ) -> None:
        self.fold = fold
        self._build = handlers
        self._handlers: dict[type, Handler[F] | None] | None = None

    @property
    def table(self) -> dict[type, Handler[F] | None]:
        """Event class -> handler (None: ignored on purpose)."""
        if self._handlers is None:
            handlers, ignored = self._build()
            table: dict[type, Handler[F] | None] = dict.fromkeys(ignored)
            table.update(handlers)
            self._handlers = table
        return self._handlers

    def __call__(self, fold: F, event: Any) -> None:
        table = self._handlers if self._handlers is not None else self.table
        try:
            handler = table[type(event)]
        except KeyError:
            raise UnhandledEvent(f"{self.fold} has no handler for {type(event).__qualname__}: "
                                 "fold it or list it as ignored") from None
        if handler is not None:
            handler(fold, event)
