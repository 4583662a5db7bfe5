"""The set-wise retention schedule equals the person-at-a-time one it replaced, on random
graphs: patients with referrals at any end (or none), links of every status, erased rows,
holds in force or lifted, any periods and horizon. Small ones drawn by hypothesis (which
shrinks a failure to its core), and larger seeded ones, where many combinations meet in
one graph."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crm.core.db import utcnow
from crm.privacy.queries import retention_schedule
from tests.privacy.retention_rows import Rows, periods, schedule_one_person_at_a_time

STATUSES = ("linked", "linked", "merged", "open", "dismissed")
# Mostly ended, so persons fall due; the others keep a whole person from it.
STAGES = ("completed", "completed", "lost", "lost", "lost", "enquiry", "follow_up", "on_hold")
# Few distinct days, so endings tie and due dates fall on the horizon's edge. (Each list
# starts with what makes a person due: hypothesis draws and shrinks towards the first.)
DAYS = (800, 400, 365, 40, 30, 20, 10, 0)
COMPLETED_DAYS, LOST_DAYS, HORIZONS = (365, 30, 0), (30, 10, 0), (0, 10, 30, 400)
ERASED = (False, False, False, True)
HOLDS = (None, None, "in force", "lifted")


@dataclass(frozen=True)
class Graph:
    referrals: list[list[tuple[str, int]]]  # per patient: (stage, days ago)
    links: list[tuple[int, int, str]]  # (patient, matched patient, status)
    erased: list[bool]
    holds: list[str | None]  # "in force", "lifted" or None, per patient
    completed_days: int
    lost_days: int
    horizon_days: int


@st.composite
def graphs(draw) -> Graph:
    size = draw(st.integers(1, 10))
    patient = st.integers(0, size - 1)
    pairs = st.tuples(patient, patient).filter(lambda pair: pair[0] != pair[1])
    links = draw(st.lists(pairs, max_size=size + 2, unique=True))
    status = st.sampled_from(STATUSES)
    referral = st.tuples(st.sampled_from(STAGES), st.sampled_from(DAYS))
    some = st.lists(referral, min_size=1, max_size=3)
    referrals = st.one_of(some, some, st.just([]))  # a third without (tombstones, say)

    def each_patient(strategy):
        return draw(st.lists(strategy, min_size=size, max_size=size))

    return Graph(
        referrals=each_patient(referrals),
        links=[(one, other, draw(status)) for one, other in links],
        erased=each_patient(st.sampled_from(ERASED)),
        holds=each_patient(st.sampled_from(HOLDS)),
        completed_days=draw(st.sampled_from(COMPLETED_DAYS)),
        lost_days=draw(st.sampled_from(LOST_DAYS)),
        horizon_days=draw(st.sampled_from(HORIZONS)),
    )


def random_graph(rng: random.Random, size: int) -> Graph:
    def referrals() -> list[tuple[str, int]]:
        count = rng.choice((0, 1, 1, 2, 3))
        return [(rng.choice(STAGES), rng.choice(DAYS)) for _ in range(count)]

    pairs = {tuple(rng.sample(range(size), 2)) for _ in range(size)}
    return Graph(
        referrals=[referrals() for _ in range(size)],
        links=[(one, other, rng.choice(STATUSES)) for one, other in sorted(pairs)],
        erased=[rng.choice(ERASED) for _ in range(size)],
        holds=[rng.choice(HOLDS) for _ in range(size)],
        completed_days=rng.choice(COMPLETED_DAYS[:2]),
        lost_days=rng.choice(LOST_DAYS[:2]),
        horizon_days=rng.choice(HORIZONS),
    )


def write(rows: Rows, graph: Graph) -> None:
    patients = [rows.patient() for _ in graph.referrals]
    anchor = rows.patient()  # a referral every link can name, whoever has none
    rows.referral(anchor, "enquiry", days_ago=0)
    for patient, referrals, erased, hold in zip(
        patients, graph.referrals, graph.erased, graph.holds, strict=True
    ):
        for stage, days_ago in referrals:
            rows.referral(patient, stage, days_ago)
        if erased:
            rows.erased(patient)
        if hold:
            rows.hold(patient, lifted=hold == "lifted")
    for one, other, status in graph.links:
        rows.link(patients[one], patients[other], status)


def same_schedule(session, graph: Graph) -> int:
    """Write `graph`, compare both schedules on it, take it back; how many were due."""
    now = utcnow()
    savepoint = session.begin_nested()
    try:
        write(Rows(session, now), graph)
        configured = periods(graph.completed_days, graph.lost_days)
        expected = schedule_one_person_at_a_time(configured, now, graph.horizon_days)
        assert retention_schedule(configured, now, graph.horizon_days) == expected
        return len(expected)
    finally:
        savepoint.rollback()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(graph=graphs())
def test_the_set_wise_schedule_equals_the_one_person_at_a_time(session, graph):
    event("someone due" if same_schedule(session, graph) else "nobody due")


@pytest.mark.parametrize("seed", range(8))
def test_the_same_on_larger_random_graphs(session, seed):
    assert same_schedule(session, random_graph(random.Random(seed), size=60)) > 0
