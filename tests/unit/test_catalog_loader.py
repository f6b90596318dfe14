"""Spec 2: the packaged sample catalog and the loader's validation (errors name the dotted field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.catalog import Campaign, PricePlan
from domain.errors import InvalidInput
from infrastructure.catalog_loader import CatalogError, load_catalog, parse_catalog

GOOD = """
[services.kintone]
name = "Kintone (test)"

[services.kintone.grades.light]
rank = 1
monthly_price = 800
annual_price = 9000
min_users = 5
"""


def test_sample_catalog_has_the_documented_prices() -> None:
    catalog = load_catalog(None)
    assert catalog.services() == ["garoon", "kintone", "mailwise-beta", "store"]
    assert catalog.plan("kintone", "light") == PricePlan(
        "kintone", "light", 1, 800, 9000, 5, 30, 0, beta=False, sla_eligible=True, store=False
    )
    standard = catalog.plan("kintone", "standard")
    assert (standard.rank, standard.monthly_price, standard.annual_price) == (2, 1500, 18000)
    assert (standard.min_users, standard.initial_fee) == (5, 10000)
    assert standard.campaign == Campaign(monthly_price=1200, months=3, annual_price=16000)
    premium = catalog.plan("kintone", "premium")
    assert (premium.rank, premium.monthly_price, premium.annual_price) == (3, 2500, 30000)
    assert premium.min_users == 10
    assert premium.initial_fee == 10000 and premium.campaign is None
    garoon = catalog.plan("garoon", "standard")
    assert (garoon.monthly_price, garoon.annual_price) == (1000, 11400)
    assert (garoon.min_users, garoon.initial_fee) == (10, 0)
    beta = catalog.plan("mailwise-beta", "standard")
    assert beta.beta and not beta.sla_eligible and (beta.monthly_price, beta.annual_price) == (500, 6000)
    store = catalog.plan("store", "free")
    assert store.store and not store.sla_eligible and (store.monthly_price, store.min_users) == (0, 1)


def test_sample_file_says_its_prices_are_fictional() -> None:
    text = (Path(__file__).parents[2] / "infrastructure" / "catalog" / "sample.toml").read_text()
    assert "fictional prices for tests and demos" in text.splitlines()[0]


def test_a_good_file_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(GOOD)
    plan = load_catalog(path).plan("kintone", "light")
    assert (plan.trial_days, plan.initial_fee) == (30, 0)
    assert (plan.beta, plan.sla_eligible, plan.store) == (False, True, False)


G = "services.kintone.grades.light"
NNI = "must be a non-negative integer"


@pytest.mark.parametrize(
    ("old", "new", "field", "problem"),
    [
        ("monthly_price = 800", 'monthly_price = "800"', f"{G}.monthly_price", NNI),
        ("monthly_price = 800", "monthly_price = -1", f"{G}.monthly_price", NNI),
        ("monthly_price = 800", "monthly_price = 8.5", f"{G}.monthly_price", NNI),
        ("annual_price = 9000", "annual_price = true", f"{G}.annual_price", NNI),
        ("min_users = 5", "min_users = 0", f"{G}.min_users", "must be an integer >= 1"),
        ("min_users = 5", "min_users = 5\ntrial_days = -3", f"{G}.trial_days", NNI),
        ("min_users = 5", "min_users = 5\ncolour = 'red'", f"{G}.colour", "unknown key"),
        ("min_users = 5", "", f"{G}.min_users", "missing required key"),
        ('name = "Kintone (test)"', "", "services.kintone.name", "missing required key"),
        ("min_users = 5", "min_users = 5\nbeta = 'yes'", f"{G}.beta", "must be true or false"),
        ("min_users = 5", "min_users = 5\nbeta = true", f"{G}.sla_eligible", "never SLA-covered"),
        (
            "min_users = 5",
            "min_users = 5\n[services.kintone.grades.light.campaign]\nmonthly_price = 600\nmonths = 0",
            f"{G}.campaign.months",
            "must be an integer >= 1",
        ),
        (
            "min_users = 5",
            "min_users = 5\n[services.kintone.grades.light.campaign]\nmonthly_price = 600",
            f"{G}.campaign.months",
            "missing required key",
        ),
        (
            "min_users = 5",
            "min_users = 5\n[services.kintone.grades.standard]\n"
            "rank = 1\nmonthly_price = 1\nannual_price = 1\nmin_users = 1",
            "services.kintone.grades.standard.rank",
            "rank 1 is already used by grade 'light'",
        ),
    ],
)
def test_a_bad_file_names_the_dotted_field(
    tmp_path: Path, old: str, new: str, field: str, problem: str
) -> None:
    assert old in GOOD
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(old, new))
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert isinstance(err.value, InvalidInput)
    assert err.value.article == "rule book 2"
    assert err.value.field == field
    assert err.value.message.startswith(f"{field}: ")
    assert problem in err.value.message
    assert str(path) in err.value.message


def test_a_bad_service_code_is_quoted_in_the_path() -> None:
    with pytest.raises(CatalogError) as err:
        parse_catalog(GOOD.replace("services.kintone", 'services."Kin tone"'))
    assert err.value.field == 'services."Kin tone"'


def test_an_empty_catalog_is_refused() -> None:
    with pytest.raises(CatalogError) as err:
        parse_catalog("services = {}")
    assert err.value.field == "services"
    with pytest.raises(CatalogError) as err:
        parse_catalog("")
    assert err.value.field == "services"


def test_unknown_top_level_key_is_refused() -> None:
    with pytest.raises(CatalogError) as err:
        parse_catalog(GOOD + "\n[extras]\nx = 1\n")
    assert err.value.field == "extras"


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(GOOD.replace("rank = 1", "rank = = 1"))
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    line = GOOD.splitlines().index("rank = 1") + 1
    assert str(path) in err.value.message
    assert f"line {line}" in err.value.message


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(CatalogError) as err:
        load_catalog(missing)
    assert str(missing) in err.value.message
    assert err.value.field == "catalog_path"


def test_price_plan_encodes_as_a_plain_dict_and_back_spec_2() -> None:
    """Events carry the plan (spec 2); its encoding is the field-ordered dict of ``dataclasses.asdict``."""
    from dataclasses import asdict

    with_campaign = PricePlan("kintone", "standard", 2, 1500, 18000, 5, 30, 10000, False, True,
                              campaign=Campaign(1200, 3, 14400))
    without = PricePlan("kintone", "light", 1, 780, 9360, 5, 30, 0, False, True)
    for plan in (with_campaign, without):
        encoded = plan.to_dict()
        assert encoded == {**asdict(plan), "tax_rate": "0.10"}  # the rate as exact text (rule book 6.1)
        assert list(encoded) == [f for f in asdict(plan)]
        assert PricePlan.from_dict(encoded) == plan
    assert with_campaign.to_dict()["campaign"] == {"monthly_price": 1200, "months": 3, "annual_price": 14400}
    encoded = with_campaign.to_dict()
    encoded["campaign"]["months"] = 99  # a copy: the frozen plan is untouched
    assert with_campaign.campaign is not None and with_campaign.campaign.months == 3
