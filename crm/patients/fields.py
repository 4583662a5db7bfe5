"""marshmallow fields that validate and normalise patient data as they load."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields

from crm.patients import validation


class _Normalised(fields.String):
    normalise: Any = None

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        return type(self).normalise(text)


class Country(_Normalised):
    normalise = staticmethod(validation.normalise_country)


class Language(_Normalised):
    normalise = staticmethod(validation.normalise_language)


class Email(_Normalised):
    normalise = staticmethod(validation.normalise_email)


class TimeZone(_Normalised):
    @staticmethod
    def normalise(value: str) -> str:
        validation.check_time_zone(value)
        return value


class Phone(fields.String):
    """International numbers are checked here; a national one waits for the country."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise ValidationError("is empty: give a phone number, or null for none")
        return validation.normalise_phone(text) if text.startswith("+") else text
