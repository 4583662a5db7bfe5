"""FHIR R4 (R4B models) for partners' integrations: a referral exported as a Bundle
(`export.py`, `records.py`), a referral submitted as a Bundle (`importing.py`)."""
