"""The email's unsubscribe link, `/unsubscribe/<token>`: a page of the patient's own, in
their language, on the portal's templates (no private link needed: the signed token
names the patient).

- GET asks (a link preview or a mail scanner changes nothing); when email is off already
  it says so and offers to subscribe again.
- POST withdraws email consent: our button, or a mail client's one-click (RFC 8058,
  `List-Unsubscribe=One-Click`, sent by the mail provider from anywhere). The answer is
  the page itself, never a redirect (RFC 8058 forbids one), saying it is done and offering
  "Keep receiving emails".
- POST with `action=subscribe` (that button) grants email consent again: the patient's
  own act (`consent_sources.SUBSCRIBED_AGAIN`), so it lifts their unsubscribe. It must
  come from our own page (crm/portal/origin.py), as the private page's forms must.

A merged patient's link acts on the survivor (`survivors`). Both directions are audited as
the patient (`consent.email`). Not rate-limited, like Twilio's webhooks: the token is
signed, and a mail provider's one-click must never be refused.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from crm.core.actors import patient_actor
from crm.core.i18n import use_language
from crm.extensions import db
from crm.patients import consent_sources
from crm.patients.links import read_unsubscribe_token
from crm.patients.models import Patient
from crm.patients.operations import set_own_consent, survivors
from crm.portal.origin import posted_from_here
from crm.portal.uploads import cross_site_refusal
from crm.portal.views import _invalid, _private, _speaking

unsubscribe_pages = Blueprint("unsubscribe", __name__)
unsubscribe_pages.after_request(_private)  # no-store, noindex, same-origin referrer, CSP
unsubscribe_pages.context_processor(_speaking)  # the hospital, the page's language helpers

CHANNEL = "email"  # the only channel our messages carry this link for


@unsubscribe_pages.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str):
    found = read_unsubscribe_token(token)
    patient = db.session.get(Patient, found[0]) if found and found[1] == CHANNEL else None
    if patient is None:
        return _invalid()
    again = request.method == "POST" and request.form.get("action") == "subscribe"
    if again and not posted_from_here():
        return cross_site_refusal()
    [patient] = survivors([patient], lock=request.method == "POST") or [patient]
    use_language(patient.language)
    if request.method == "GET" or (again and not patient.email):  # no address to write to
        state = "asking" if patient.may_contact(CHANNEL) else "off"
    elif again:
        _choose(patient, True, consent_sources.SUBSCRIBED_AGAIN)
        state = "subscribed"
    else:
        _choose(patient, False, consent_sources.UNSUBSCRIBE_LINK)
        state = "unsubscribed"
    return render_template("portal/unsubscribe.html", state=state, address=patient.email)


def _choose(patient: Patient, granted: bool, source: str) -> None:
    set_own_consent(patient, CHANNEL, granted, source, patient_actor(patient.id))
