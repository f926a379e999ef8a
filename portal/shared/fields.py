"""Model fields several apps use."""

from django.db import models

from portal.shared.sealing import SEALED_PREFIX, seal_text, unseal_text


class SealedCharField(models.CharField):
    """A secret the portal must use in clear (an HMAC key it signs with) but must not keep
    readable at rest: the row holds it sealed (Fernet, a key derived from SECRET_KEY and its
    fallbacks, portal/shared/sealing.py); Python code reads and writes it in clear. A value
    stored before sealing began is read as it is, and sealed when next saved."""

    def __init__(self, *args, purpose: str, **kwargs):
        self.purpose = purpose
        kwargs.setdefault("max_length", 400)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        return None if value is None else unseal_text(value, self.purpose)

    def value_to_string(self, obj):
        # What a serializer writes (`dumpdata`, a fixture): the sealed form, as the row holds
        # it; loading it back stores it as it is (get_prep_value below).
        value = self.value_from_object(obj)
        return None if value is None else self.get_prep_value(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value.startswith(SEALED_PREFIX):
            return value
        return seal_text(value, self.purpose)
