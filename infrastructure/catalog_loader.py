"""Load the operator's catalog file (spec 2) into ``domain.catalog.Catalog``.

The file is TOML (see ``infrastructure/catalog/sample.toml`` for the shape). Every problem
is a ``CatalogError`` whose ``field`` is the dotted TOML path of the offending value,
e.g. ``services.kintone.grades.light.monthly_price``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

from domain.catalog import Campaign, Catalog, PricePlan
from domain.errors import InvalidInput
from domain.invoicing import STANDARD_RATE, tax_rate

ARTICLE = "rule book 2"
SAMPLE_SOURCE = "packaged sample.toml"

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_CODE = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")

_SERVICE_KEYS = {"name": True, "store": False, "grades": True}  # key -> required
_GRADE_KEYS = {
    "rank": True,
    "monthly_price": True,
    "annual_price": True,
    "min_users": True,
    "trial_days": False,
    "initial_fee": False,
    "beta": False,
    "sla_eligible": False,
    "campaign": False,
    "tax_rate": False,
}
_CAMPAIGN_KEYS = {"monthly_price": True, "months": True, "annual_price": False}


class CatalogError(InvalidInput):
    """A catalog file that cannot be used; ``field`` is the dotted TOML path (or ``catalog_path``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(ARTICLE, message, field)


def load_catalog(path: Path | None = None, default_tax_rate: Decimal = STANDARD_RATE) -> Catalog:
    """Read and validate a catalog file; ``None`` loads the packaged sample catalog. A grade
    without ``tax_rate`` sells at ``default_tax_rate`` (POLICY ``tax_rate``, rule book 6.1)."""
    try:
        if path is None:
            source, raw = SAMPLE_SOURCE, files("infrastructure").joinpath("catalog/sample.toml").read_bytes()
        else:
            source, raw = str(path), path.read_bytes()
    except OSError as exc:
        raise CatalogError(
            f"cannot read catalog file {path}: {exc.strerror or exc}", "catalog_path"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{source}: not UTF-8 (byte {exc.start})", "catalog_path") from None
    return parse_catalog(text, source, default_tax_rate)


def parse_catalog(text: str, source: str = "<string>", default_tax_rate: Decimal = STANDARD_RATE) -> Catalog:
    """Validate catalog TOML text; ``source`` names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: invalid TOML: {exc}", "catalog_path") from None
    return _Reader(source, default_tax_rate).catalog(data)


def _dotted(*keys: str) -> str:
    return ".".join(k if _BARE_KEY.match(k) else json.dumps(k) for k in keys)


class _Reader:
    def __init__(self, source: str, default_tax_rate: Decimal = STANDARD_RATE) -> None:
        self.source = source
        self.default_tax_rate = default_tax_rate

    def rate(self, value: object, path: tuple[str, ...]) -> Decimal:
        """Rule book 6.1: "0.10" (standard) or "0.08" (reduced), as a string (TOML floats are inexact)."""
        if not isinstance(value, str):
            raise self.fail(path, 'must be a string: "0.10" (standard) or "0.08" (reduced)')
        try:
            return tax_rate(value)
        except InvalidInput as exc:
            raise self.fail(path, exc.message) from None

    def fail(self, path: tuple[str, ...], problem: str) -> CatalogError:
        field = _dotted(*path)
        return CatalogError(f"{field}: {problem} (in {self.source})", field)

    def table(self, value: object, path: tuple[str, ...], keys: Mapping[str, bool]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "must be a table")
        for key in value:
            if key not in keys:
                raise self.fail((*path, key), f"unknown key (expected one of: {', '.join(keys)})")
        for key, required in keys.items():
            if required and key not in value:
                raise self.fail((*path, key), "missing required key")
        return value

    def integer(self, value: object, path: tuple[str, ...], minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(
                path, "must be a non-negative integer" if minimum == 0 else f"must be an integer >= {minimum}"
            )
        return value

    def boolean(self, value: object, path: tuple[str, ...]) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value

    def code(self, key: str, path: tuple[str, ...]) -> str:
        if not _CODE.match(key):
            raise self.fail(path, "codes use lower-case letters, digits, '-' and '_'")
        return key

    def catalog(self, data: dict[str, Any]) -> Catalog:
        self.table(data, (), {"services": True})
        services = data["services"]
        if not isinstance(services, dict) or not services:
            raise self.fail(("services",), "must be a table with at least one service")
        plans: dict[tuple[str, str], PricePlan] = {}
        for code, body in services.items():
            for plan in self.service(code, body):
                plans[(plan.service, plan.grade)] = plan
        return Catalog(plans)

    def service(self, code: str, body: object) -> list[PricePlan]:
        path = ("services", code)
        self.code(code, path)
        table = self.table(body, path, _SERVICE_KEYS)
        if not isinstance(table["name"], str) or not table["name"].strip():
            raise self.fail((*path, "name"), "must be a non-empty string")
        store = self.boolean(table.get("store", False), (*path, "store"))
        grades = table["grades"]
        if not isinstance(grades, dict) or not grades:
            raise self.fail((*path, "grades"), "must be a table with at least one grade")
        plans: list[PricePlan] = []
        ranks: dict[int, str] = {}
        for grade, grade_body in grades.items():
            plan = self.grade(code, store, grade, grade_body)
            if plan.rank in ranks:
                raise self.fail(
                    (*path, "grades", grade, "rank"),
                    f"rank {plan.rank} is already used by grade {ranks[plan.rank]!r} (ranks must be unique)",
                )
            ranks[plan.rank] = grade
            plans.append(plan)
        return plans

    def grade(self, service: str, store: bool, grade: str, body: object) -> PricePlan:
        path = ("services", service, "grades", grade)
        self.code(grade, path)
        table = self.table(body, path, _GRADE_KEYS)
        beta = self.boolean(table.get("beta", False), (*path, "beta"))
        sla_eligible = self.boolean(table.get("sla_eligible", True), (*path, "sla_eligible"))
        if sla_eligible and (store or beta):
            raise self.fail(
                (*path, "sla_eligible"),
                "the store service and beta grades are never SLA-covered (Art. 20.2.1): set it to false",
            )
        campaign = None
        if "campaign" in table:
            campaign = self.campaign(table["campaign"], (*path, "campaign"))
        return PricePlan(
            service=service,
            grade=grade,
            rank=self.integer(table["rank"], (*path, "rank"), minimum=1),
            monthly_price=self.integer(table["monthly_price"], (*path, "monthly_price")),
            annual_price=self.integer(table["annual_price"], (*path, "annual_price")),
            min_users=self.integer(table["min_users"], (*path, "min_users"), minimum=1),
            trial_days=self.integer(table.get("trial_days", 30), (*path, "trial_days")),
            initial_fee=self.integer(table.get("initial_fee", 0), (*path, "initial_fee")),
            beta=beta,
            sla_eligible=sla_eligible,
            store=store,
            campaign=campaign,
            tax_rate=self.rate(table["tax_rate"], (*path, "tax_rate")) if "tax_rate" in table
            else self.default_tax_rate,
        )

    def campaign(self, body: object, path: tuple[str, ...]) -> Campaign:
        table = self.table(body, path, _CAMPAIGN_KEYS)
        annual = table.get("annual_price")
        return Campaign(
            monthly_price=self.integer(table["monthly_price"], (*path, "monthly_price")),
            months=self.integer(table["months"], (*path, "months"), minimum=1),
            annual_price=None if annual is None else self.integer(annual, (*path, "annual_price")),
        )
