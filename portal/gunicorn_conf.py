"""gunicorn's settings for the portal: `gunicorn -c portal/gunicorn_conf.py portal.wsgi`.

Its access lines carry each request's path and referrer, which for a company's answer page
hold the answer link's token; its error lines name the request too ("Error handling
request POST /r/…" after a worker timed out). Both are masked like every other log line
(portal/shared/logs.py): gunicorn's loggers have handlers of their own, outside
settings.LOGGING.
"""

from gunicorn.glogging import Logger

from portal.shared.logs import mask_handlers, redact


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        mask_handlers(self.error_log)
        mask_handlers(self.access_log)

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}


logger_class = RedactingLogger
