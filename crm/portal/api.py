"""Staff handling of patients' private links."""

from __future__ import annotations

from marshmallow import Schema, fields

from crm.auth.guards import caller_scope, current_actor, staff_only
from crm.core import audit
from crm.core.blueprint import Blueprint
from crm.core.idempotency import idempotent
from crm.patients import links
from crm.referrals.queries import referral_for

blp = Blueprint("patient_links", __name__, description="Patients' private links")


class PatientLinkSchema(Schema):
    url = fields.String()
    expires_at = fields.DateTime()


class RevokedSchema(Schema):
    revoked = fields.Integer()


@blp.post("/referrals/<int:referral_id>/patient-link")
@idempotent(caller_scope)
@staff_only("coordinator", "manager")
@blp.response(201, PatientLinkSchema)
def issue_link(referral_id: int):
    """The patient's private link, to share by phone or chat (the same one messages carry)."""
    referral = referral_for(current_actor(), referral_id)
    link = links.link_for(referral.id)
    audit.record(current_actor(), "patient_link.issue", referral.id)
    url = f"{links.base_url()}/p/{links.token_for(link)}"
    return {"url": url, "expires_at": link.expires_at}


@blp.delete("/referrals/<int:referral_id>/patient-link")
@staff_only("coordinator", "manager")
@blp.response(200, RevokedSchema)
def revoke_links(referral_id: int):
    """Revoke every live link of this referral at once (e.g. a forwarded message)."""
    referral = referral_for(current_actor(), referral_id, for_update=True)
    revoked = links.revoke_all(referral.id)
    audit.record(current_actor(), "patient_link.revoke", referral.id, revoked=revoked)
    return {"revoked": revoked}
