"""Whether a post to the patient's page came from the page itself (crm/portal/origin.py)."""

import pytest

from crm.portal.origin import same_site

OWN = ("https://care.hospital.example", "http://127.0.0.1:5000")


@pytest.mark.parametrize(
    ("origin", "referer"),
    [
        ("https://care.hospital.example", None),
        ("https://CARE.hospital.example:443", None),
        ("http://127.0.0.1:5000", None),
        (None, "https://care.hospital.example/p/abc"),
        (None, None),
        (None, ""),
    ],
    ids=["origin", "origin-default-port", "local", "referer", "neither", "empty-referer"],
)
def test_a_post_from_our_own_pages_or_naming_no_origin_is_same_site(origin, referer):
    assert same_site(origin, referer, OWN)


@pytest.mark.parametrize(
    ("origin", "referer"),
    [
        ("https://evil.example", None),
        ("https://care.hospital.example.evil.example", None),
        ("https://care.hospital.example:8443", None),
        ("http://127.0.0.1:5001", None),
        ("null", "https://care.hospital.example/p/abc"),
        ("", None),
        ("https://evil.example", "https://care.hospital.example/p/abc"),
        (None, "https://evil.example/p/abc"),
        (None, "javascript:alert(1)"),
        ("https://care.hospital.example:99999", None),
    ],
    ids=[
        "another-site",
        "lookalike",
        "another-port",
        "another-local-port",
        "null-origin-wins-over-referer",
        "empty-origin",
        "origin-wins-over-referer",
        "referer-of-another-site",
        "not-a-web-address",
        "impossible-port",
    ],
)
def test_a_post_naming_another_site_is_not(origin, referer):
    assert not same_site(origin, referer, OWN)
