"""Sessions whose keys never rest readable (DESIGN.md: "Secrets are hashed").

Django's database sessions store the cookie's value as the row's key: whoever reads the
table or a backup can sign in as every person signed in. Here the row holds the SHA-256 of
the key instead (160 bits of it, to fit the standard `django_session` column), so the
cookie exists only in the browser; the store is otherwise Django's own. A code that allauth
keeps in a session while it waits to be typed (sign-in or re-authentication by email) is
therefore of no use to a reader of the table: it works only inside that browser's session.

Deploying this signs everyone out once: the keys stored before it are not hashes.
"""

import hashlib

from django.contrib.sessions.backends import db


def stored_key(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


class SessionStore(db.SessionStore):
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
