"""A procedure's follow-up questions and alert rules, and its review fields: catalogue data.

Pure (no Flask, no database). Each question has a code (the answer's key), a type (`score`
0-10, `yes_no`, or `choice` among coded options) and a label per language; a score may
say at which value it raises `high_score` (>= N) and by how much a rise on the previous
answer raises `rising` (>= N). Rules name the answers that raise an urgent `red_flag`, or
a `task` for a coordinator that is not urgent, each with the reason staff read:

    {raises = "red_flag", reason = "fever", when = {fever = true}, unless = {wound = "opened"}}

matches when every `when` answer is one of its values and no `unless` answer is. The
patient answers free text too, always (`free_text`): it is no question of the catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, fields, validate

from crm.core.schemas import Args

LANGUAGES = ("en", "tr", "ar", "ru", "de")
QUESTION_TYPES = ("score", "yes_no", "choice")
RULE_LEVELS = ("red_flag", "task")
SCORE_MIN, SCORE_MAX = 0, 10
FREE_TEXT = "free_text"
FREE_TEXT_MAX = 2000
ALERTS = ("none", "rising", "high_score", "red_flag")  # least to most severe


def label_in(labels: Mapping[str, str], language: str) -> str:
    """The label in `language` (a tag such as `de-AT` reads `de`), else English."""
    base = language.replace("_", "-").split("-")[0].lower()
    return labels.get(base) or labels["en"]


@dataclass(frozen=True)
class Question:
    code: str
    type: str
    label: Mapping[str, str]
    options: tuple[Mapping[str, Any], ...] = ()
    high_score: int | None = None
    rising: int | None = None

    @property
    def name(self) -> str:
        """How staff read it in a reason: `back_pain` is "back pain"."""
        return self.code.replace("_", " ")

    @property
    def option_codes(self) -> tuple[str, ...]:
        return tuple(option["code"] for option in self.options)

    def label_in(self, language: str) -> str:
        return label_in(self.label, language)

    def options_in(self, language: str) -> list[tuple[str, str]]:
        return [(o["code"], label_in(o["label"], language)) for o in self.options]


@dataclass(frozen=True)
class Rule:
    raises: str  # red_flag | task
    reason: str
    when: Mapping[str, tuple[Any, ...]]
    unless: Mapping[str, tuple[Any, ...]]

    def matches(self, answers: Mapping[str, Any]) -> bool:
        return all(_is_one_of(answers.get(c), values) for c, values in self.when.items()) and (
            not any(_is_one_of(answers.get(c), values) for c, values in self.unless.items())
        )


def _is_one_of(answer: Any, values: tuple[Any, ...]) -> bool:
    # `True == 1` in Python: compare the type too, so a yes/no never matches a score.
    return any(type(answer) is type(value) and answer == value for value in values)


@dataclass(frozen=True)
class Assessment:
    alert: str  # none | rising | high_score | red_flag
    reasons: tuple[str, ...] = ()
    # Not urgent, but a coordinator should look (e.g. a red wound without fever).
    watch: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckInForm:
    """One procedure's questions and rules, as the catalogue row holds them."""

    questions: tuple[Question, ...]
    rules: tuple[Rule, ...]

    @classmethod
    def from_data(cls, questions: Sequence[Mapping[str, Any]], rules: Sequence[Mapping[str, Any]]):
        return cls(
            tuple(
                Question(
                    code=q["code"],
                    type=q["type"],
                    label=dict(q["label"]),
                    options=tuple(q.get("options") or ()),
                    high_score=q.get("high_score"),
                    rising=q.get("rising"),
                )
                for q in questions
            ),
            tuple(
                Rule(
                    r["raises"],
                    r["reason"],
                    _as_tuples(r.get("when") or {}),
                    _as_tuples(r.get("unless") or {}),
                )
                for r in rules
            ),
        )

    @property
    def scores(self) -> tuple[Question, ...]:
        return tuple(q for q in self.questions if q.type == "score")

    def question(self, code: str) -> Question | None:
        return next((q for q in self.questions if q.code == code), None)

    def answers_schema(self) -> Args:
        """The input schema of these answers: every question required, nothing else taken
        (an unknown field is refused by name), free text optional."""
        declared: dict[str, fields.Field] = {
            FREE_TEXT: fields.String(load_default="", validate=validate.Length(max=FREE_TEXT_MAX))
        }
        for question in self.questions:
            declared[question.code] = _answer_field(question)
        return Args.from_dict(declared, name="CheckInAnswers")()

    def assess(self, answers: Mapping[str, Any], previous: Mapping[str, Any] | None) -> Assessment:
        """The alert one set of answers raises, against the previous answered one: a red
        flag wins (and makes a task moot), then a high score, then a rising one."""
        red = tuple(r.reason for r in self.rules if r.raises == "red_flag" and r.matches(answers))
        if red:
            return Assessment("red_flag", red)
        watch = tuple(r.reason for r in self.rules if r.raises == "task" and r.matches(answers))
        high = tuple(
            f"{q.name} {answers[q.code]}/10"
            for q in self.scores
            if q.high_score is not None
            and answers.get(q.code) is not None
            and answers[q.code] >= q.high_score
        )
        if high:
            return Assessment("high_score", high, watch)
        rising = tuple(
            f"{q.name} rose from {previous[q.code]} to {answers[q.code]}"
            for q in self.scores
            if q.rising is not None
            and previous
            and previous.get(q.code) is not None
            and answers.get(q.code) is not None
            and answers[q.code] - previous[q.code] >= q.rising
        )
        if rising:
            return Assessment("rising", rising, watch)
        return Assessment("none", (), watch)


def _as_tuples(conditions: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        code: tuple(value) if isinstance(value, list | tuple) else (value,)
        for code, value in conditions.items()
    }


def _answer_field(question: Question) -> fields.Field:
    if question.type == "score":
        return fields.Integer(
            required=True,
            validate=validate.Range(min=SCORE_MIN, max=SCORE_MAX),
            metadata={"description": "0-10"},
        )
    if question.type == "yes_no":
        return fields.Boolean(required=True)
    return fields.String(required=True, validate=validate.OneOf(question.option_codes))


# --- review fields ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewField:
    """A procedure-specific finding the specialist records (disc level; side and grade)."""

    code: str
    label: str
    options: tuple[Mapping[str, str], ...]
    required: bool = False

    @property
    def option_codes(self) -> tuple[str, ...]:
        return tuple(option["code"] for option in self.options)


def review_fields_of(data: Sequence[Mapping[str, Any]]) -> tuple[ReviewField, ...]:
    return tuple(
        ReviewField(f["code"], f["label"], tuple(f["options"]), bool(f.get("required")))
        for f in data
    )


def review_fields_schema(review_fields: Sequence[ReviewField]) -> Schema:
    """Loads only the procedure's own fields; anything else is left for the caller."""
    declared: dict[str, fields.Field] = {
        f.code: fields.String(
            required=f.required,
            allow_none=not f.required,
            validate=validate.OneOf(f.option_codes),
        )
        for f in review_fields
    }
    return Args.from_dict(declared, name="ReviewFields")()


# The fields every review has: a procedure's own field may not take one of these names.
RESERVED_REVIEW_CODES = frozenset(
    {
        "decision",
        "findings",
        "recommended_procedure",
        "risks_to_discuss",
        "notes",
        "request_to_patient",
        "procedure_fields",
    }
)
