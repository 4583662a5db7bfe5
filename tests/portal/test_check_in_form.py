"""The check-in form on the patient's page is the procedure's own questions, labelled in
the patient's language from the catalogue; its own words (heading, button) by gettext."""

from __future__ import annotations

import re

import pytest

from crm.patients import links
from crm.tasks.models import Task
from tests.followup.support import knee_patient_after_surgery

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "no_quiet_hours")


def _url(referral, tail=""):
    return f"/p/{links.token_for(links.link_for(referral.id))}{tail}"


@pytest.fixture
def knee(factory, agency, coordinator):
    return knee_patient_after_surgery(factory, agency, coordinator, language="de")


def test_a_knee_patient_reads_the_knee_questions_in_german(client, knee):
    page = client.get(_url(knee)).get_data(as_text=True)
    assert '<h2 id="check-in-heading">Wie geht es Ihnen?</h2>' in page
    assert "Knieschmerzen jetzt (0 = keine, 10 = stärkste)" in page
    assert "Schmerzen, Druckempfindlichkeit oder Schwellung in der Wade" in page
    assert "Wie weit können Sie das Knie beugen?" in page
    assert '<option value="getting_worse">nimmt zu</option>' in page
    assert ">Senden</button>" in page
    assert "Rückenschmerzen" not in page and 'name="saddle_numbness"' not in page


def test_calf_pain_ticked_on_the_page_tells_the_patient_to_call(client, session, knee):
    answers = {
        "knee_pain": "4",
        "knee_swelling": "about_the_same",
        "calf_pain_or_swelling": "yes",
        "wound": "healing_well",
        "knee_bend": "right_angle",
    }
    response = client.post(_url(knee, "/check-in"), data=answers)
    assert response.status_code == 303
    assert "done=urgent" in response.headers["Location"]
    task = session.query(Task).filter_by(referral_id=knee.id, priority="urgent").one()
    assert "deep vein thrombosis" in task.detail


def test_a_refused_check_in_keeps_what_the_patient_entered(client, knee):
    answers = {
        "knee_pain": "",  # no score
        "knee_swelling": "getting_worse",
        "wound": "healing_well",
        "knee_bend": "hardly",
        "free_text": "Es zieht beim Treppensteigen",
    }
    response = client.post(_url(knee, "/check-in"), data=answers)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(r'name="knee_pain"[^>]*aria-invalid="true"', page)
    assert "Bitte beantworten Sie diese Frage." in page
    assert '<option value="getting_worse" selected>' in page
    assert '<option value="hardly" selected>' in page
    assert "Es zieht beim Treppensteigen</textarea>" in page
