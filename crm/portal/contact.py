"""How we contact you: on the private page the patient sees, for each channel we have an
address for, whether we may write to them there, and switches it (`POST /p/<token>/contact`,
one form a channel, no JavaScript). Turning a channel on there is the patient's own act
(`consent_sources.PATIENT_PAGE`), so it lifts their own earlier STOP or unsubscribe as a
START reply does; an agency's form never does (crm/patients/operations.py).

WhatsApp is offered only to a patient who uses it with us: a WhatsApp consent on record
(given, or withdrawn by their STOP) or a WhatsApp message from their number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import phonenumbers
from flask import redirect, request, url_for
from flask_babel import lazy_gettext as _

from crm.messaging.session import last_inbound
from crm.patients import consent_sources
from crm.patients.models import Patient
from crm.patients.operations import set_own_consent, survivors
from crm.portal.views import _invalid, _patient_actor, _referral, portal
from crm.referrals.models import Referral

NAMES = {
    "sms": _("SMS"),
    "whatsapp": _("WhatsApp"),
    "email": _("Email"),
}
# Each button says what it does and to which channel (a screen reader lists them alone).
SWITCHES = {
    ("sms", True): _("Turn on SMS messages"),
    ("sms", False): _("Turn off SMS messages"),
    ("whatsapp", True): _("Turn on WhatsApp messages"),
    ("whatsapp", False): _("Turn off WhatsApp messages"),
    ("email", True): _("Turn on emails"),
    ("email", False): _("Turn off emails"),
}


@dataclass(frozen=True)
class ContactChannel:
    channel: str
    address: str
    on: bool

    @property
    def shown_address(self) -> str:
        """The address as a person reads it: "+49 1517 7000001" rather than E.164."""
        if self.channel == "email":
            return self.address
        try:
            number = phonenumbers.parse(self.address)
        except phonenumbers.NumberParseException:
            return self.address
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)

    @property
    def name(self) -> str:
        return str(NAMES[self.channel])

    @property
    def switch(self) -> str:
        """The button's words: the opposite of the channel's state."""
        return str(SWITCHES[self.channel, not self.on])


def channels_of(patient: Patient) -> list[ContactChannel]:
    """The channels the patient has an address for, in the order the page lists them."""
    found = []
    if patient.phone:
        found.append(ContactChannel("sms", patient.phone, patient.may_contact("sms")))
        if _uses_whatsapp(patient):
            on = patient.may_contact("whatsapp")
            found.append(ContactChannel("whatsapp", patient.phone, on))
    if patient.email:
        found.append(ContactChannel("email", patient.email, patient.may_contact("email")))
    return found


def _uses_whatsapp(patient: Patient) -> bool:
    if patient.consent_for("whatsapp") is not None:
        return True
    return bool(patient.phone and last_inbound([patient.phone]))


def contact_context(referral: Referral) -> dict[str, Any]:
    """What `portal/sections/contact.html` shows."""
    channels = channels_of(referral.patient)
    return {"contact_channels": channels, "contact_all_off": not any(c.on for c in channels)}


@portal.post("/p/<token>/contact")
def choose_contact(token: str):
    """One channel on or off, as the patient chose; back to the section saying it is saved.
    A channel the section does not offer (no address, WhatsApp not used) changes nothing."""
    referral = _referral(token)
    if referral is None:
        return _invalid()
    channel, wanted = request.form.get("channel", ""), request.form.get("on", "")
    found = survivors([referral.patient], lock=True)
    offered = {c.channel for c in channels_of(found[0])} if found else set()
    if channel in offered and wanted in {"yes", "no"}:
        granted = wanted == "yes"
        actor = _patient_actor(referral)
        set_own_consent(
            found[0], channel, granted, consent_sources.PATIENT_PAGE, actor, referral.id
        )
        done = "contact"
    else:
        done = None
    return redirect(url_for("portal.page", token=token, done=done) + "#contact", 303)
