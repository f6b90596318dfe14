"""Issue 20: ``contracts demo`` tells its story in date order, and what falls due is fired by the
real deadline scheduler (so the story is what the service does), not called by the script."""

from __future__ import annotations

import re

import pytest

from api.cli import main


def test_demo_runs_the_scheduler_in_date_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    dates = [m.group(0) for line in lines if (m := re.match(r"\d{4}-\d{2}-\d{2}", line))]
    assert dates == sorted(dates) and len(dates) >= 25
    # Art. 9: April = campaign price 1,200 x 10 + initial fee 10,000 + 10 % tax 2,200, due the month after next's end
    assert "2026-04-01 invoice 2026-04: 24200 yen due 2026-05-31 (campaign_fee 12000, initial_fee 10000, tax 2200)" \
        in lines
    # Art. 9.5: overdue the day after the due date, fired by the scheduler's sweep of 06-01
    assert any(line.startswith("2026-06-01 scheduler fired:") and "payment overdue (Art. 9.5)" in line
               for line in lines)
    # Art. 9.4: 24,200 x 14.5 % x 4 days (06-01 .. 06-04) / 365 = 38.45 -> 38 yen
    assert any(line.startswith("2026-06-05 April invoice") and "late interest 38 yen for the 4 days" in line
               for line in lines)
    # Art. 20: 2 credit days of the premium x 12 monthly fee 30,000 -> -2,000 on the next invoice (tax on 28,000)
    # rule book 6, Art. 9.4: April's settled late interest (38) is billed on it, a line without tax
    assert ("2026-07-01 invoice 2026-07: 30838 yen due 2026-08-31 (base_fee 30000, sla_credit -2000, "
            "late_interest 38, tax 2800)") in lines
    # paid in time: no suspension (spec 7); ended by the notice; Art. 15.3: stored data 60 days after the end
    assert "suspen" not in out.replace("suspension notice (spec 7) would", "")
    assert "contract terminated (notice) on 2026-08-31; stored data kept until 2026-10-30 (Art. 15.3)" in lines
    assert "2026-10-30 scheduler fired: stored data deleted (Art. 15.3)" in lines
    assert "2034-06-01 scheduler fired: contractor data erased after the records period (Art. 13, spec 10)" in lines
    assert "INFO" not in out and "WARNING" not in out  # no log line on stdout
