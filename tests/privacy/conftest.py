import pytest

from crm.features import ALL_FEATURES


@pytest.fixture
def manager(factory):
    return factory.staff("manager")


@pytest.fixture
def no_stay_guards(features):
    """A referral walks into treatment by the state machine; every other feature wired."""
    return features.only(*(name for name in ALL_FEATURES if name != "travel"))


@pytest.fixture
def case(client, factory, agency, coordinator, manager, no_stay_guards):
    """A completed case of a person of their own, with something in every table."""
    from tests.privacy.support import completed_case

    return completed_case(client, factory, agency, coordinator, manager)
