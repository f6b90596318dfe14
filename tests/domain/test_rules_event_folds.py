"""Folds dispatch on event classes (issue 13): every event class of the Contract aggregate is
handled or explicitly ignored by each fold, so a new or renamed event fails here, not silently."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from domain.billing import LEDGER_FOLD, Ledger
from domain.contract import ARTICLE_RECORDED_BY_EVENT, EVENT_ARTICLES, Contract, ContractEvents
from domain.deadlines import TIMELINE_FOLD, Timeline
from domain.folds import UnhandledEvent

EVENT_CLASSES = {v for k, v in vars(Contract).items()
                 if inspect.isclass(v) and issubclass(v, Contract.Event) and k not in ("Event", "Created")}


def test_contract_events_lists_every_event_class_of_the_aggregate() -> None:
    assert set(ContractEvents.all()) == EVENT_CLASSES and len(EVENT_CLASSES) == 33  # 25 + rule book 7 + 3 invoice


@pytest.mark.parametrize("fold", [LEDGER_FOLD, TIMELINE_FOLD], ids=lambda f: f.fold)
def test_every_contract_event_is_handled_or_ignored_by_each_fold(fold: Any) -> None:
    assert set(fold.table) == EVENT_CLASSES


def test_every_contract_event_has_an_article() -> None:
    assert set(EVENT_ARTICLES) | set(ARTICLE_RECORDED_BY_EVENT) == EVENT_CLASSES
    assert not set(EVENT_ARTICLES) & set(ARTICLE_RECORDED_BY_EVENT)


class NotAContractEvent:
    pass


@pytest.mark.parametrize("fold", [Ledger(Contract.create_id("c", "s")), Timeline()], ids=type)
def test_an_unknown_event_class_fails_loudly(fold: Any) -> None:
    with pytest.raises(UnhandledEvent, match="NotAContractEvent"):
        fold.apply(NotAContractEvent())
