"""The search page: the pipeline's own search (`list_referrals` with `q`), with the filters
the API takes and a "next page" by its cursor. An R-number that finds one referral opens
that referral's page at once."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for
from marshmallow import ValidationError

from crm.auth.guards import current_actor
from crm.console.auth import staff_page
from crm.console.views import console
from crm.referrals.queries import list_referrals
from crm.referrals.references import referral_id_in
from crm.referrals.schemas import StaffReferralListArgs

PAGE_SIZE = 25
# The query string the search takes: the API's own names (GET /api/v1/referrals).
SINGLE = ("q", "agency_id", "direct", "owner_id", "unassigned", "procedure", "cursor")


def _args() -> dict[str, Any]:
    raw: dict[str, Any] = {
        name: request.args[name].strip() for name in SINGLE if request.args.get(name, "").strip()
    }
    stages = [stage for stage in request.args.getlist("stage") if stage]
    if stages:
        raw["stage"] = stages
    return raw


def _in_words(errors: dict[str, Any]) -> str:
    if "q" in errors:
        return "Type at least 2 characters (and at most 100) to search."
    return "Not a search this page can run: " + "; ".join(
        f"{name}: {' '.join(str(m) for m in (msgs if isinstance(msgs, list) else [msgs]))}"
        for name, msgs in errors.items()
    )


@console.get("/search")
@staff_page()
def search():
    raw = _args()
    if not raw:  # nothing asked yet: the box alone
        return render_template("console/search.html", raw=raw, page=None, error=None)
    try:
        args = StaffReferralListArgs().load({**raw, "limit": str(PAGE_SIZE)})
    except ValidationError as exc:
        error = _in_words(exc.messages_dict)
        return render_template("console/search.html", raw=raw, page=None, error=error), 422
    page = list_referrals(current_actor(), args)  # audited as `referral.list`
    if _names_one_referral(raw, page):
        return redirect(url_for("console.referral", referral_id=page.items[0].id))
    next_args = {**raw, "cursor": page.next_cursor} if page.next_cursor else None
    return render_template(
        "console/search.html", raw=raw, page=page, next_args=next_args, error=None
    )


def _names_one_referral(raw: dict[str, Any], page) -> bool:
    """`R-000013` (with its R) typed alone, no filter, and that referral found."""
    if set(raw) != {"q"} or len(page.items) != 1:
        return False
    referral_id, surely = referral_id_in(raw["q"])
    return surely and page.items[0].id == referral_id
