"""The timeline words every event class of the Contract aggregate (dispatch on the class)."""

from __future__ import annotations

from api.ui.history import DETAILS
from domain.contract import ContractEvents


def test_every_contract_event_class_has_a_timeline_text() -> None:
    assert set(DETAILS) == set(ContractEvents.all())
