"""gunicorn's settings for the portal: `gunicorn -c portal/gunicorn_conf.py portal.wsgi`.

Its access lines carry each request's path and referrer, which for a company's answer page
hold the answer link's token: they are masked like every other log line (portal/shared/logs.py).
"""

from gunicorn.glogging import Logger

from portal.shared.logs import redact


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}


logger_class = RedactingLogger
