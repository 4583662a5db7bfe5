"""The rollups are kept by the domain events and equal a recount from the source rows."""

from __future__ import annotations

from crm.referrals.sla import service_levels
from crm.reports.rollups import rebuild
from tests.reports.support import a_realistic_day, rollup_rows


def test_the_rollups_kept_by_events_equal_a_rebuild_from_the_source_rows(
    app, client, session, factory, agency, coordinator
):
    a_realistic_day(client, factory, agency, coordinator)
    kept = rollup_rows(session)
    assert kept["report_stage_daily"] and kept["report_plan_daily"]
    rebuild(service_levels(app.config["CRM"]))
    assert rollup_rows(session) == kept


def test_a_referral_returning_to_a_stage_is_counted_as_reaching_it_once(
    session, factory, agency, coordinator
):
    referral = factory.referral(agency)
    from crm.referrals.operations import move_to_stage

    move_to_stage(referral, "on_hold", coordinator.actor)
    move_to_stage(referral, "enquiry", coordinator.actor)
    rows = rollup_rows(session)["report_stage_daily"]
    assert sum(row[-1] for row in rows if row[1] == "enquiry") == 1


def test_the_rebuild_command_recounts_and_says_how_many_rows_it_wrote(
    app, client, session, factory, agency, coordinator
):
    a_realistic_day(client, factory, agency, coordinator)
    result = app.test_cli_runner().invoke(args=["crm", "reports", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "report_stage_daily:" in result.output
