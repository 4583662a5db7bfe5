"""The audit trail page (managers, admins): the API's own query (GET /api/v1/audit-events)
with its filters, a referral named by its R-number, times in the viewer's zone."""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from marshmallow import ValidationError

from crm.audit.queries import search
from crm.audit.schemas import AuditArgs
from crm.auth.guards import current_actor
from crm.console.auth import staff_page
from crm.console.views import console
from crm.referrals.references import hospital_reference, referral_id_in

FILTERS = ("referral", "actor_type", "actor_id", "action", "remote_addr", "since", "until")
PAGE_SIZE = 50


def _args(raw: dict[str, str]) -> dict[str, Any]:
    loaded = {name: value for name, value in raw.items() if name not in {"referral"}}
    if raw.get("referral"):
        referral_id, _ = referral_id_in(raw["referral"])
        if referral_id is None:
            raise ValidationError({"referral": ["not a reference such as R-000013"]})
        loaded["referral_id"] = str(referral_id)
    return AuditArgs().load({**loaded, "limit": str(PAGE_SIZE)})


@console.get("/audit")
@staff_page("manager")
def audit_trail():
    raw = {
        name: request.args[name].strip()[:200]
        for name in (*FILTERS, "cursor")
        if request.args.get(name, "").strip()
    }
    try:
        args = _args(raw)
    except ValidationError as exc:
        words = "; ".join(
            f"{name.replace('_', ' ')}: {' '.join(map(str, reasons))}"
            for name, reasons in exc.messages_dict.items()
        )
        return render_template("console/audit.html", raw=raw, page=None, error=words), 422
    page = search(current_actor(), args)  # audited as `audit.read`
    next_args = {**raw, "cursor": page.next_cursor} if page.next_cursor else None
    return render_template(
        "console/audit.html",
        raw=raw,
        page=page,
        next_args=next_args,
        reference=hospital_reference,
        error=None,
    )
