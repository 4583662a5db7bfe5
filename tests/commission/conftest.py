import pytest

from crm.features import ALL_FEATURES


@pytest.fixture
def manager(factory):
    return factory.staff("manager")


@pytest.fixture
def no_stay_guards(features):
    """Travel's stay facts are travel's to test: here a referral walks into treatment by
    the state machine, every other feature (commission among them) wired."""
    return features.only(*(name for name in ALL_FEATURES if name != "travel"))
