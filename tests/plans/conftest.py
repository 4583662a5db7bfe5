import pytest

from tests.plans.support import reviewed_as_candidate


@pytest.fixture
def candidate(factory, agency, coordinator):
    """A referral in mri_review whose specialist found the patient a candidate."""
    return reviewed_as_candidate(factory, agency, coordinator)
