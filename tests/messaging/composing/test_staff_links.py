"""Every email to staff links to the referral's console page, not to the API."""

from __future__ import annotations

from tests.messaging.support import new_referral, outbox_for


def test_the_coordinators_new_referral_email_links_to_the_console_page(factory):
    referral = new_referral(factory, patient={"language": "en"})
    [notice] = outbox_for(referral.id, kind="enquiry_received_coordinator")
    assert f"/console/referrals/{referral.id}" in notice.body_text
    assert "/api/v1/" not in notice.body_text
