from sqlalchemy import update
from crm.core.db import utcnow
from crm.plans.models import PlanLineItem, TreatmentPlan
from crm.plans.operations import accept_plan
from crm.core.actors import Actor
from tests.plans.support import plan_body, reviewed_as_candidate
from crm.referrals.models import Referral

C = {"treatment_information_acknowledged": True, "data_processing": True}

def test_huge(client, factory):
    a = factory.agency()
    r = client.get("/api/v1/plans/99999999999", headers=a.headers())
    print("HUGE", r.status_code, r.json)

def test_insert_item(client, session, factory):
    a, c = factory.agency(), factory.staff()
    ref = reviewed_as_candidate(factory, a, c)
    pid = client.post(f"/api/v1/referrals/{ref.id}/plans", json=plan_body(), headers=c.headers()).json["id"]
    plan = session.get(TreatmentPlan, pid)
    accept_plan(plan, C, Actor("patient", ref.patient_id, "p"))
    session.commit()
    plan.items.append(PlanLineItem(position=9, kind="other", description="x", quantity=1, unit_price_minor=5))
    session.flush()
    session.commit()
    print("INSERTED; total now", session.get(TreatmentPlan, pid).total_minor)

def test_stale(client, session, factory):
    a, c = factory.agency(), factory.staff()
    ref = reviewed_as_candidate(factory, a, c)
    pid = client.post(f"/api/v1/referrals/{ref.id}/plans", json=plan_body(), headers=c.headers()).json["id"]
    plan = session.get(TreatmentPlan, pid)
    ref = session.get(Referral, ref.id)
    conn = session.connection()
    conn.execute(TreatmentPlan.__table__.update().where(TreatmentPlan.__table__.c.id == pid).values(status="accepted", accepted_at=utcnow(), acceptance={"x": 1}))
    conn.execute(Referral.__table__.update().where(Referral.__table__.c.id == ref.id).values(stage="plan_accepted"))
    try:
        accept_plan(plan, C, Actor("patient", ref.patient_id, "p"))
        session.flush()
        print("STALE ACCEPT WENT THROUGH", len(ref.history), [h.to_stage for h in ref.history])
    except Exception as e:
        print("STALE refused", type(e), e)
