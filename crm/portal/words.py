"""What the patient's page says, in the patient's words (gettext, English msgids).

The stages as a patient would name them, what each stage means and what comes next, the
labels of the form fields, and the sentences that replace the domain's English errors: a
patient never reads a field name ("data_processing") or an operation's message.
Each value is a lazy string, translated when the page renders in the request's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _

from crm.core.errors import Conflict, DomainError, ValidationFailed
from crm.portal.i18n import day

# The progress line: nine steps in a patient's words.
STEPS = (
    ("enquiry", _("Enquiry received")),
    ("mri", _("MRI images")),
    ("review", _("Specialist review")),
    ("plan", _("Treatment plan")),
    ("travel", _("Travel")),
    ("treatment", _("Treatment")),
    ("recovery", _("Recovery")),
    ("follow_up", _("Follow-up at home")),
    ("done", _("Done")),
)
STEP_OF_STAGE = {
    "enquiry": 0,
    "awaiting_mri": 1,
    "mri_review": 2,
    "plan_offered": 3,
    "plan_accepted": 3,
    "travel_booked": 4,
    "in_treatment": 5,
    "post_op": 6,
    "follow_up": 7,
    "completed": 8,
}

WHERE = {
    "enquiry": _("We have received your enquiry."),
    "awaiting_mri": _("We are waiting for your MRI images."),
    "mri_review": _("Our specialist is reviewing your MRI images."),
    "plan_offered": _("Your treatment plan is ready for you to read and accept."),
    "plan_accepted": _("You have accepted your plan. We are arranging your travel."),
    "travel_booked": _("Your travel is booked."),
    "in_treatment": _("You are in our care at the hospital."),
    "post_op": _("Your operation is done. We will check in with you regularly."),
    "follow_up": _("You are home. We will keep checking in with you."),
    "completed": _("Your follow-up is complete. We wish you good health."),
    "on_hold": _("Your enquiry is paused for now. Nothing is lost: we will carry on from here."),
    "lost": _(
        "Your enquiry is closed. We are sorry we could not help this time; if anything "
        "changes, call us and we will gladly look at it again."
    ),
}

NEXT = {
    "enquiry": _("Please send us your MRI images: our specialist reviews them first."),
    "awaiting_mri": _("Send your MRI images to your coordinator as soon as you have them."),
    "mri_review": _("You will hear from us within two working days."),
    "plan_offered": _("Read the plan below and accept it when you are ready."),
    "plan_accepted": _("Your coordinator will send you your travel details."),
    "travel_booked": _("Check your flights, hotel and hospital admission below."),
    "in_treatment": _("Rest; your care team is with you."),
    "post_op": _("Answer the short check-ins when we ask."),
    "follow_up": _("Answer the short check-ins when we ask."),
    "on_hold": _("Call us whenever you are ready to go on, or if you have a question."),
}

# The form fields a patient fills in, by the name the domain gives them.
FIELD_LABELS = {
    "treatment_information_acknowledged": _(
        "I have read the treatment information, including the risks to discuss with the surgeon."
    ),
    "data_processing": _(
        "I agree to the processing of my health data for this treatment (GDPR / KVKK)."
    ),
    "back_pain": _("Back pain now (0 = none, 10 = worst)"),
    "leg_pain": _("Leg pain now (0 = none, 10 = worst)"),
    "numbness": _("Numbness in the leg"),
    "weakness": _("Weakness in the leg"),
    "wound": _("The wound"),
    "bladder_or_bowel_trouble": _("New trouble controlling the bladder or bowel"),
    "saddle_numbness": _("Numbness between the legs or around the bottom"),
    "fever": _("Fever (38 °C or more) or feeling feverish"),
    "free_text": _("Anything else you want to tell us"),
}
WOUND_STATES = {
    "healing_well": _("healing well"),
    "red_or_swollen": _("red or swollen"),
    "discharge": _("leaking fluid"),
    "opened": _("opened"),
}

_CONSENTS = ("treatment_information_acknowledged", "data_processing")
_SCORES = ("back_pain", "leg_pain")


@dataclass(frozen=True)
class Problem:
    """What went wrong, said to the patient: a sentence, and one line per field."""

    summary: str
    fields: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()


def field_problem(field: str) -> str:
    """One field's problem, named by its label."""
    label = FIELD_LABELS.get(field)
    if label is None:
        return str(_("One of your answers could not be read; please check the form."))
    if field in _CONSENTS:
        return str(_("Please tick the box “%(label)s”", label=label))
    if field in _SCORES:
        return str(_("%(label)s: please enter a number from 0 to 10.", label=label))
    if field == "wound":
        return str(_("%(label)s: please choose one answer.", label=label))
    if field == "free_text":
        return str(_("%(label)s: please write at most 2,000 characters.", label=label))
    return str(_("%(label)s: please answer this question.", label=label))


def form_problem(exc: ValidationFailed, labels: dict[str, str] | None = None) -> Problem:
    """The refused fields by their labels; `labels` names questions that are data (a
    procedure's check-in questions, labelled in the patient's language by the catalogue)."""
    fields = tuple(dict.fromkeys(error["field"] for error in exc.extensions.get("errors", [])))
    return Problem(
        summary=str(_("Please check the form:")),
        fields=fields,
        lines=tuple(_labelled_problem(field, labels or {}) for field in fields),
    )


def _labelled_problem(field: str, labels: dict[str, str]) -> str:
    if field in labels and field not in FIELD_LABELS:
        return str(_("%(label)s: please answer this question.", label=labels[field]))
    return field_problem(field)


def acceptance_problem(exc: DomainError, plan_expired: bool) -> Problem:
    """Why the plan could not be accepted, in the patient's words."""
    if isinstance(exc, ValidationFailed):
        return form_problem(exc)
    if plan_expired:
        return Problem(str(_("This plan has expired. Please ask your coordinator for a new one.")))
    return Problem(
        str(_("This plan can no longer be accepted here. Your coordinator will gladly help."))
    )


def check_in_problem(exc: DomainError, labels: dict[str, str] | None = None) -> Problem:
    """Why the answers could not be stored, in the patient's words."""
    if isinstance(exc, ValidationFailed):
        return form_problem(exc, labels)
    if isinstance(exc, Conflict) and "opens_at" in exc.extensions:
        opens = datetime.fromisoformat(exc.extensions["opens_at"])
        return Problem(str(_("This check-in opens on %(date)s.", date=day(opens))))
    if isinstance(exc, Conflict):
        return Problem(str(_("You have already answered this check-in. Thank you.")))
    return Problem(str(_("Your answers could not be sent. Please call us.")))


@dataclass(frozen=True)
class Step:
    name: str
    label: str
    state: str  # "done", "current", "paused" or "upcoming"


def progress_of(stage: str, held_from_stage: str | None = None) -> list[Step]:
    """The progress line for a stage; empty for a closed enquiry (`lost`). A paused one
    (`on_hold`) shows the step where it paused."""
    paused = stage == "on_hold"
    at = STEP_OF_STAGE.get(held_from_stage or "" if paused else stage)
    if at is None:
        return []
    here = "paused" if paused else "current"
    return [
        Step(name, str(label), "done" if n < at else here if n == at else "upcoming")
        for n, (name, label) in enumerate(STEPS)
    ]
