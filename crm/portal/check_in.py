"""The follow-up check-in on the patient's page: the procedure's own questions (catalogue
data, labelled in the patient's language) and the form's answers read back by them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm.catalogue.check_in import FREE_TEXT, FREE_TEXT_MAX, CheckInForm
from crm.followup.queries import open_check_in
from crm.referrals.models import Referral

ASKING_STAGES = frozenset({"post_op", "follow_up"})
YES = "yes"  # a ticked box


def check_in_context(referral: Referral) -> dict[str, Any]:
    """What the check-in section needs: the open check-in (if any) and its questions as
    (code, type, label, options) in the patient's language."""
    check_in = open_check_in(referral.id) if referral.stage in ASKING_STAGES else None
    if check_in is None:
        return {"check_in": None, "check_in_questions": []}
    language = referral.patient.language
    questions = [
        {
            "code": q.code,
            "type": q.type,
            "label": q.label_in(language),
            "options": q.options_in(language),
        }
        for q in referral.procedure.check_in_form.questions
    ]
    return {"check_in": check_in, "check_in_questions": questions}


def answers_from_form(form: Mapping[str, str], questions: CheckInForm) -> dict[str, Any]:
    """The posted form as the operation takes answers: a score only as plain digits (else
    no answer, which the operation refuses by name), a box ticked or not, a choice only
    among its options."""
    answers: dict[str, Any] = {FREE_TEXT: form.get(FREE_TEXT, "")[:FREE_TEXT_MAX]}
    for question in questions.questions:
        raw = form.get(question.code, "")
        if question.type == "score":
            raw = raw.strip()
            ok = raw.isascii() and raw.isdigit() and len(raw) <= 9
            answers[question.code] = int(raw) if ok else None
        elif question.type == "yes_no":
            answers[question.code] = raw == YES
        else:
            answers[question.code] = raw if raw in question.option_codes else None
    return answers
