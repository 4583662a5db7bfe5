"""What delivery refuses and what it survives: redirects, addresses checked again at
delivery (and pinned), order per referral, a dispatcher killed mid-batch."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from crm.webhooks import delivery as delivery_module
from crm.webhooks.signing import new_secret
from crm.webhooks.ssrf import Target
from tests.fakes.webhook_receiver import running_receiver
from tests.webhooks import delivery_support as support
from tests.webhooks.delivery_support import START, fresh


@pytest.fixture
def secret() -> str:
    return new_secret()


def test_a_redirect_is_not_followed_and_is_a_failed_attempt(session, secret):
    with running_receiver(secret, mode="redirecting") as receiver:
        delivery = support.delivery(support.endpoint(receiver.url, secrets=[secret]))
        support.dispatcher().run_once(START)
    assert [r.path for r in receiver.received] == ["/hooks"]  # nobody went to /moved
    row = fresh(delivery)
    assert (row.status, row.last_status_code) == ("pending", 302)
    assert "redirect to /moved not followed" in row.last_error


def test_a_loopback_url_is_refused_at_delivery_when_localhost_is_not_allowed(session, secret):
    with running_receiver(secret) as receiver:
        delivery = support.delivery(support.endpoint(receiver.url, secrets=[secret]))
        support.dispatcher(allow_localhost=False).run_once(START)
    assert receiver.received == []
    row = fresh(delivery)
    assert row.status == "pending" and row.last_status_code is None
    assert row.last_error.startswith("refused at delivery:")


def test_a_name_that_now_resolves_to_a_private_address_is_refused(session, secret, monkeypatch):
    """Registered while it pointed somewhere public; DNS has changed since."""

    def lookup(host, port, *args, **kwargs):
        assert host == "hooks.agency.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    delivery = support.delivery(
        support.endpoint("https://hooks.agency.example/crm", secrets=[secret])
    )
    support.dispatcher(allow_localhost=False).run_once(START)
    row = fresh(delivery)
    assert row.status == "pending"
    assert "resolves to 10.0.0.7, a private or reserved address" in row.last_error
    assert fresh(row.endpoint).consecutive_failures == 1


def test_the_post_goes_to_the_address_checked_and_never_looks_the_name_up_again(
    session, secret, monkeypatch
):
    with running_receiver(secret) as receiver:
        port = int(receiver.url.split(":")[2].split("/")[0])
        checked = Target("http", "hooks.agency.example", port, ("127.0.0.1",))
        monkeypatch.setattr(delivery_module, "resolve_target", lambda url, **_: checked)

        real_lookup = socket.getaddrinfo

        def second_lookup(host, *args, **kwargs):
            if host == "hooks.agency.example":
                raise AssertionError("the name was looked up again after the check")
            return real_lookup(host, *args, **kwargs)  # the checked address, numeric

        monkeypatch.setattr(socket, "getaddrinfo", second_lookup)
        delivery = support.delivery(
            support.endpoint(f"http://hooks.agency.example:{port}/hooks", secrets=[secret])
        )
        support.dispatcher().run_once(START)
    [received] = receiver.received
    assert received.header("host") == f"hooks.agency.example:{port}"
    assert received.verified and fresh(delivery).status == "delivered"


def test_a_referrals_later_event_waits_while_its_first_keeps_failing(session, secret):
    with running_receiver(secret, mode="failing") as receiver:
        hook = support.endpoint(receiver.url, secrets=[secret])
        first = support.delivery(hook, ordering_key="referral:7")
        second = support.delivery(hook, ordering_key="referral:7")
        other = support.delivery(hook, ordering_key="referral:8")
        dispatcher = support.dispatcher()
        dispatcher.run_once(START)
        assert sorted(receiver.ids()) == sorted([first.event.public_id, other.event.public_id])
        # the second is due, but its referral's first is still pending
        assert dispatcher.run_once(START + timedelta(seconds=10)) == 0
        receiver.mode = "ok"
        dispatcher.run_once(fresh(first).next_attempt_at)
        dispatcher.run_once(fresh(first).next_attempt_at)
    ids = receiver.ids()
    first_delivered = max(i for i, id_ in enumerate(ids) if id_ == first.event.public_id)
    assert ids.index(second.event.public_id) > first_delivered
    assert fresh(second).status == "delivered"


def test_a_referrals_next_event_goes_once_the_first_has_failed_for_good(session, secret):
    with running_receiver(secret, mode="failing") as receiver:
        hook = support.endpoint(receiver.url, secrets=[secret])
        first = support.delivery(hook, ordering_key="referral:9")
        second = support.delivery(hook, ordering_key="referral:9", created_at=START)
        support.dispatcher().run_once(START + timedelta(hours=72))
        assert fresh(first).status == "failed"
        receiver.mode = "ok"
        support.dispatcher().run_once(START + timedelta(hours=72))
    assert fresh(second).status == "delivered"


def test_rows_a_killed_dispatcher_left_sending_go_out_again_after_the_stale_threshold(
    session, secret
):
    with running_receiver(secret) as receiver:
        hook = support.endpoint(receiver.url, secrets=[secret])
        rows = [support.delivery(hook) for _ in range(3)]
        dying = support.dispatcher()
        claimed = dying.claim(START, 10)  # ...and the process is killed before any POST
        assert len(claimed) == 3 and {fresh(r).status for r in rows} == {"sending"}
        survivor = support.dispatcher()
        assert survivor.run_once(START) == 0  # claimed rows are nobody else's
        claimed_at = claimed[0].token
        assert survivor.reconcile_stale(claimed_at + timedelta(seconds=30)) == 0
        later = claimed_at + survivor.settings.stale_after + timedelta(seconds=1)
        assert survivor.reconcile_stale(later) == 3
        assert "may see this webhook-id twice" in fresh(rows[0]).last_error
        assert survivor.run_once(later) == 3
    assert sorted(receiver.ids()) == sorted(r.event.public_id for r in rows)
    assert {fresh(r).status for r in rows} == {"delivered"}


def test_a_late_answer_from_a_reclaimed_row_does_not_overwrite_the_newer_claim(session, secret):
    with running_receiver(secret, mode="failing") as receiver:
        hook = support.endpoint(receiver.url, secrets=[secret])
        row = support.delivery(hook)
        slow = support.dispatcher()
        [job] = slow.claim(START, 1)
        late_answer = slow.poster.deliver(job)
        survivor = support.dispatcher()
        survivor.reconcile_stale(job.token + survivor.settings.stale_after * 2)
        receiver.mode = "ok"
        survivor.run_once(job.token + survivor.settings.stale_after * 2)
        slow.record([late_answer], START)  # the first claim's answer arrives at last
    row = fresh(row)
    assert row.status == "delivered" and row.last_status_code == 200
    assert len(receiver.received) == 2  # twice, as the README says it may be
