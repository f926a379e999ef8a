"""Sessions whose keys and contents never rest readable (DESIGN.md: "Secrets are hashed").

Django's database sessions store the cookie's value as the row's key: whoever reads the
table or a backup can sign in as every person signed in. Here the row holds the SHA-256 of
the key instead (160 bits of it, to fit the standard `django_session` column), so the
cookie exists only in the browser.

The row's data is sealed too (Fernet, under a key derived from the cookie's value and
SECRET_KEY), so only a request bearing the cookie can read it. Django only signs it: its
JSON is base64 and zlib away from anyone who reads the table, a replica, a dump or the
WAL, and the libraries keep secrets there while a person is in the middle of something:
allauth keeps a password-reset key once its link is opened, a second factor's secret while
it is being set up, the job site's OIDC tokens while a sign-up waits for its form, and,
for a form held for re-authentication, the whole request, its `Cookie` header (this very
session's key) included. Sealed, none of it is of use to a reader without the cookie,
which the row does not hold.

Deploying either change signs everyone out once: the rows stored before it are neither
hashed nor sealed. The retention job deletes rows past their expiry (backoffice/retention.py).
"""

import hashlib

from cryptography.fernet import InvalidToken, MultiFernet
from django.contrib.sessions.backends import db

from portal.shared.sealing import sealing_keys


def stored_key(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


def _sealing(session_key: str) -> MultiFernet:
    """The keys of one session: its cookie's value under each configured secret (a session
    sealed under SECRET_KEY_FALLBACKS is still read, and sealed anew when saved)."""
    return sealing_keys(f"session {session_key}")


class SessionStore(db.SessionStore):
    def encode(self, session_dict):
        if self._session_key is None:
            raise ValueError("a session is sealed under its own key: it needs one first")
        signed = super().encode(session_dict)
        return _sealing(self._session_key).encrypt(signed.encode()).decode()

    def decode(self, session_data):
        # Without the cookie's value (a row read by itself, as `Session.get_decoded()`
        # reads it), or with another's, there is nothing to read: an empty session.
        if self._session_key is None:
            return {}
        try:
            signed = _sealing(self._session_key).decrypt(session_data.encode()).decode()
        except InvalidToken:
            return {}
        return super().decode(signed)

    def _get_session_from_db(self):
        if self.session_key is None:
            return None
        try:
            return self.model.objects.get(
                session_key=stored_key(self.session_key), expire_date__gt=db.timezone.now()
            )
        except self.model.DoesNotExist:
            self._session_key = None
            return None

    async def _aget_session_from_db(self):
        if self.session_key is None:
            return None
        try:
            return await self.model.objects.aget(
                session_key=stored_key(self.session_key), expire_date__gt=db.timezone.now()
            )
        except self.model.DoesNotExist:
            self._session_key = None
            return None

    def exists(self, session_key):
        return super().exists(stored_key(session_key))

    async def aexists(self, session_key):
        return await super().aexists(stored_key(session_key))

    def create_model_instance(self, data):
        session = super().create_model_instance(data)
        session.session_key = stored_key(session.session_key)
        return session

    async def acreate_model_instance(self, data):
        session = await super().acreate_model_instance(data)
        session.session_key = stored_key(session.session_key)
        return session

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self.model.objects.filter(session_key=stored_key(session_key)).delete()

    async def adelete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        await self.model.objects.filter(session_key=stored_key(session_key)).adelete()
