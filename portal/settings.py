"""The portal's one settings file.

Every deploy-time value comes from the environment. The defaults make a safe, embedded
set-up (SQLite, Celery running tasks in-process, email to the console) so that `make run`
needs nothing else; a malformed value stops the process with ImproperlyConfigured rather
than being guessed at.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, REPORT_SAMPLE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: expected true/false, 1/0, yes/no or on/off")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected an integer") from None


def env_positive_int(name: str, default: int) -> int:
    value = env_int(name, default)
    if value < 1:
        raise ImproperlyConfigured(f"{name}={value}: expected a whole number, 1 or more")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value and urlsplit(value).scheme not in schemes:
        raise ImproperlyConfigured(f"{name}={value!r}: expected a URL starting with {schemes}")
    return value


DEBUG = env_bool("DEBUG", False)
# The default is for development and tests only; `check --deploy` flags it (security.W009).
SECRET_KEY = env_str("SECRET_KEY", "django-insecure-development-key-never-use-in-production")
# Rotating the key: the old one here (comma-separated) keeps sessions, links and the sealed
# secrets readable until they have been replaced (docs/operations.md, "Rotating SECRET_KEY").
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000", ("http", "https")).rstrip("/")
SITE_NAME = _("Student data portal")

INSTALLED_APPS = [
    # django.contrib.admin, with the back office's dashboard on the admin's front page.
    "backoffice.apps.BackofficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    # Second factors (TOTP, recovery codes, WebAuthn): required of staff by the admin site.
    "allauth.mfa",
    # Sign-in with the job site's account (OpenID Connect), for students only: always
    # installed so the tables and URLs are the same everywhere; without OIDC_ISSUER there is
    # no provider, so no button and no way in (see "Sign-in with the job site" below).
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    # Content-Security-Policy (see "Security" below); the app adds its system checks.
    "csp",
    "portal",
    "audit",
    "consent",
    "inferences",
    "disclosure",
    "backoffice",
]

MIDDLEWARE = [
    "portal.middleware.RefuseNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.session_lifetime.SessionLifetimeMiddleware",
    "portal.middleware.PrivatePagesMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "consent.middleware.PolicyAcceptanceMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.site",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # WAL lets the demo's web process and an eager task read while another writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
        "DATABASE_CONNECT_TIMEOUT", 5
    )
    # JIT compilation costs PostgreSQL 0.25–0.8 s on the report queries and wins nothing
    # on these short OLTP ones.
    DATABASES["default"]["OPTIONS"]["options"] = "-c jit=off"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts (django-allauth) ---------------------------------------------------------
AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_ADAPTER = "portal.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_SIGNUP_FORM_CLASS = "portal.forms.SignupForm"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
ACCOUNT_DEFAULT_HTTP_PROTOCOL = urlsplit(SITE_URL).scheme
# Second factors. Staff must have TOTP or a security key before the admin opens
# (backoffice/site.py); students may turn it on from their account page.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
# Encrypts the TOTP secret and the recovery codes' seed at rest (portal/adapters.py).
MFA_ADAPTER = "portal.adapters.MFAAdapter"
MFA_TOTP_ISSUER = SITE_NAME
# Recovery codes pass the second factor: shown once, when made, then masked (and no longer
# downloadable); whoever lost them makes new ones, which voids the old.
MFA_RECOVERY_CODES_SHOW_ONCE = True
# WebAuthn needs https; plain http is allowed only for a developer's localhost (allauth then
# skips the origin check altogether, so never with a real host name).
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG and urlsplit(SITE_URL).hostname in (
    "localhost",
    "127.0.0.1",
)
# allauth's rate limits are on by default; stated here so nobody turns them off by accident.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    # Also the second-factor step: allauth 65.x counts each code entered at sign-in (and when
    # activating TOTP) against "login_failed" with the key "mfa-auth-user-<id>", so an account
    # takes 5 codes per 5 minutes, right or wrong, whatever the IP; a right one clears it.
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reauthenticate": "10/m/user",
}

# --- Sign-in with the job site's account (OpenID Connect) -------------------------------
# The job site is the identity provider; a student's portal account is linked to the site's
# subject id (SocialAccount.uid = "sub"). Unset OIDC_ISSUER: no SSO, email sign-up only.
OIDC_ISSUER = env_url("OIDC_ISSUER", "", ("https", "http")).rstrip("/")
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID")
OIDC_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET")
OIDC_NAME = env_str("OIDC_NAME") or "求人サイト / Job site"  # the button label
# Part of the redirect URI registered at the provider (/accounts/oidc/jobsite/login/callback/)
# and stored in every link (SocialAccount.provider): a constant, never renamed.
OIDC_PROVIDER_ID = "jobsite"
if OIDC_ISSUER and not (OIDC_CLIENT_ID and OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured("OIDC_ISSUER is set: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET too")
# allauth skips the ID token's signature check when the token came straight from the token
# endpoint, trusting TLS for it: plain http is allowed only for a provider on this machine.
if urlsplit(OIDC_ISSUER).scheme == "http" and urlsplit(OIDC_ISSUER).hostname not in (
    "127.0.0.1",
    "localhost",
    "::1",
):
    raise ImproperlyConfigured(
        f"OIDC_ISSUER={OIDC_ISSUER!r}: expected https (http on loopback only)"
    )
# The job site's origin, where the sign-in button's POST is redirected to.
OIDC_ORIGINS = (
    [f"{urlsplit(OIDC_ISSUER).scheme}://{urlsplit(OIDC_ISSUER).netloc}"] if OIDC_ISSUER else []
)
SOCIALACCOUNT_ADAPTER = "portal.adapters.SocialAccountAdapter"
SOCIALACCOUNT_ONLY = False  # email sign-up stays (the demo; students who left the site)
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "OAUTH_PKCE_ENABLED": True,
        # The provider's email counts as verified only when its email_verified claim says so.
        "VERIFIED_EMAIL": False,
        "APPS": (
            [
                {
                    "provider_id": OIDC_PROVIDER_ID,
                    "name": OIDC_NAME,
                    "client_id": OIDC_CLIENT_ID,
                    "secret": OIDC_CLIENT_SECRET,
                    "settings": {"server_url": OIDC_ISSUER, "oauth_pkce_enabled": True},
                }
            ]
            if OIDC_ISSUER
            else []
        ),
    }
}
# A verified email at the provider that an email-signup account already holds signs in to
# that account and links it (once linked, the subject id is what counts). allauth wipes the
# local password when the local address was never verified, so whoever registered someone
# else's address in advance is locked out. Staff are never reached this way (the adapter).
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_EMAIL_VERIFICATION = None  # ACCOUNT_EMAIL_VERIFICATION ("mandatory") applies
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_LOGIN_ON_GET = False  # the sign-in starts from a form POST, never a link
SOCIALACCOUNT_STORE_TOKENS = False  # the portal calls nothing at the site on a student's behalf
SOCIALACCOUNT_REQUESTS_TIMEOUT = env_int("OIDC_TIMEOUT", 5)

# --- Internationalisation --------------------------------------------------------------
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["portal.formats"]

# --- Static files ----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))

# --- Email -----------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "privacy-portal@example.jp")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
SUPPORT_EMAIL = env_str("SUPPORT_EMAIL", "support@example.jp")
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive")

# --- Celery ----------------------------------------------------------------------------
# With no broker, tasks run in-process when queued (after the transaction commits), which
# is the embedded demo set-up. Production sets CELERY_BROKER_URL=redis://...
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", "", ("redis", "rediss", "amqp", "memory"))
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# socket_connect_timeout: queueing a task must not hang a web request on an unreachable broker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 5}
CELERY_TIMEZONE = TIME_ZONE
# How long a queued message is trusted to be in the queue before a sweep queues its work
# again (portal/shared/queueing.py); the sweeps' intervals. Tests of faults make them short.
QUEUE_LEASE_SECONDS = env_int("QUEUE_LEASE_SECONDS", 900)
EMAIL_SWEEP_SECONDS = env_int("EMAIL_SWEEP_SECONDS", 60)
REQUESTS_SWEEP_SECONDS = env_int("REQUESTS_SWEEP_SECONDS", 300)
# A sweep still waiting in the queue when the next one is due is dropped unrun (expires):
# beat goes on queueing one per interval while the workers are behind or away, and only the
# newest of them has anything to do.
CELERY_BEAT_SCHEDULE = {
    "email-sweep": {
        "task": "portal.tasks.email_sweep",
        "schedule": float(EMAIL_SWEEP_SECONDS),
        "options": {"expires": float(EMAIL_SWEEP_SECONDS)},
    },
    "requests-sweep": {
        "task": "disclosure.tasks.requests_sweep",
        "schedule": float(REQUESTS_SWEEP_SECONDS),
        "options": {"expires": float(REQUESTS_SWEEP_SECONDS)},
    },
    # Once a day, at a quiet hour (CELERY_TIMEZONE): see "Retention" below.
    "retention-run": {
        "task": "backoffice.tasks.retention_run",
        "schedule": crontab(hour=3, minute=30),
    },
}

# --- Cache ---------------------------------------------------------------------------
# Rate limits (allauth's and the API's) count in the cache: with several web processes it
# must be shared, so production sets CACHE_URL=redis://...; the embedded default is local.
CACHE_URL = env_url("CACHE_URL", "", ("redis", "rediss"))
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 600)

# --- Security --------------------------------------------------------------------------
SECURE_SSL = urlsplit(SITE_URL).scheme == "https"
SESSION_COOKIE_SECURE = SECURE_SSL
CSRF_COOKIE_SECURE = SECURE_SSL
LANGUAGE_COOKIE_SECURE = SECURE_SSL
SESSION_COOKIE_HTTPONLY = True
# Database sessions whose rows hold the SHA-256 of the cookie, not the cookie (portal/sessions.py).
SESSION_ENGINE = "portal.sessions"
# How long a sign-in lasts (portal/session_lifetime.py): idle minutes for staff and for
# students, and hours in all for everyone; the cookie lasts no longer.
SESSION_IDLE_MINUTES_STAFF = env_positive_int("SESSION_IDLE_MINUTES_STAFF", 30)
SESSION_IDLE_MINUTES = env_positive_int("SESSION_IDLE_MINUTES", 60)
SESSION_MAX_HOURS = env_positive_int("SESSION_MAX_HOURS", 12)
SESSION_COOKIE_AGE = SESSION_MAX_HOURS * 3600
# Lax, not Strict: a student following a link from one of our emails (a receipt, a request
# completed) arrives signed in; a cross-site POST still carries no session or CSRF cookie.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SAMESITE = "Lax"  # Django sends none by default
LANGUAGE_COOKIE_HTTPONLY = True  # no script of ours reads it
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", SECURE_SSL)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if SECURE_SSL else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Preloading HSTS is a one-way decision the operator opts into (SECURE_HSTS_PRELOAD=1).
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", SITE_URL)
# A load balancer in front of every request: its X-Forwarded-Proto says whether the visitor
# used HTTPS, and the last X-Forwarded-For entry is the visitor's address
# (portal.shared.http.client_ip).
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Content-Security-Policy and the other browser headers -----------------------------
# Django 5.2 has no Content-Security-Policy of its own (that arrives in Django 6.0), so
# django-csp's middleware sends it. Nothing the portal serves needs 'unsafe-inline' or
# 'unsafe-eval': every style and script is a file under /static/, and
# tests/security/test_headers.py fails on an inline one in a served template. An injected
# <script>, style or on*= handler therefore does not run. The policy is enforced, with no
# report-only mode: every page is checked for violations in Chromium (tests/e2e), and a
# switch that loosens the policy in production would only ever be left on.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        # 'report-sample': a violation report quotes the start of what was blocked.
        "script-src": [SELF, REPORT_SAMPLE],
        "style-src": [SELF, REPORT_SAMPLE],
        # data: for the favicon placeholder and the QR code of an authenticator app's set-up.
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        # The job site's origin too: Chromium applies form-action to the redirect that
        # follows the sign-in button's POST.
        "form-action": [SELF, *OIDC_ORIGINS],
        "frame-ancestors": [NONE],
    },
}
# Cross-Origin-Opener-Policy: Django's SecurityMiddleware sends it (stated, not defaulted).
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Django has no setting for these two: portal.middleware.SecurityHeadersMiddleware sends them.
# No other site embeds the portal's pages, files or images (the emails link, never embed).
CROSS_ORIGIN_RESOURCE_POLICY = "same-origin"
# Browser features the portal never uses are off for it and anything it could be made to
# load; WebAuthn (security keys and passkeys for staff) stays allowed for the portal itself.
PERMISSIONS_POLICY = {
    "accelerometer": [],
    "autoplay": [],
    "camera": [],
    "display-capture": [],
    "encrypted-media": [],
    "fullscreen": [],
    "geolocation": [],
    "gyroscope": [],
    "magnetometer": [],
    "microphone": [],
    "midi": [],
    "payment": [],
    "picture-in-picture": [],
    "publickey-credentials-create": ["self"],
    "publickey-credentials-get": ["self"],
    "screen-wake-lock": [],
    "usb": [],
    "xr-spatial-tracking": [],
}

# --- The portal ------------------------------------------------------------------------
# A real company name in production; printed on receipts and reports.
PORTAL_OPERATOR = {
    "name": env_str("PORTAL_OPERATOR_NAME", "株式会社サンプル就活ナビ"),
    "contact": env_str("PORTAL_OPERATOR_CONTACT", "個人情報保護管理者"),
    "email": env_str("PORTAL_OPERATOR_EMAIL", "privacy@example.jp"),
    "phone": env_str("PORTAL_OPERATOR_PHONE", "03-0000-0000"),
    "address": env_str("PORTAL_OPERATOR_ADDRESS", "東京都千代田区丸の内1-1-1"),
}

# Data-rights requests: the internal deadline (stricter than GDPR's month), reminders to a
# company that has not answered, how long an answer link works, and what a company may upload.
REQUEST_DUE_DAYS = env_int("REQUEST_DUE_DAYS", 14)
# How long the portal waits for one of the site's own systems (DataSource) to take a call.
SOURCE_TIMEOUT_SECONDS = env_int("SOURCE_TIMEOUT_SECONDS", 10)
# A company's webhook (docs/api.md, "Webhooks"): seconds to wait for its answer, and how many
# attempts (timeouts, connection errors, 5xx, 408, 429) before a delivery fails for staff.
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
WEBHOOK_MAX_ATTEMPTS = env_positive_int("WEBHOOK_MAX_ATTEMPTS", 6)
try:
    REQUEST_REMINDER_DAYS = sorted(int(d) for d in env_list("REQUEST_REMINDER_DAYS", "3,7"))
except ValueError:
    raise ImproperlyConfigured("REQUEST_REMINDER_DAYS: expected days, e.g. 3,7") from None
ANSWER_LINK_DAYS = env_int("ANSWER_LINK_DAYS", 30)
# How long a link to a company's workspace (all its tasks, issue 19) works.
WORKSPACE_LINK_DAYS = env_positive_int("WORKSPACE_LINK_DAYS", 7)
# The length of an "hour" for the companies on an hourly digest (disclosure/services/
# digests.py): an hour in production; tests of faults make it a few seconds.
DIGEST_HOUR_SECONDS = env_positive_int("DIGEST_HOUR_SECONDS", 3600)
COMPANY_FILE_MAX_BYTES = env_int("COMPANY_FILE_MAX_BYTES", 5 * 1024 * 1024)
COMPANY_FILE_TYPES = [
    "application/pdf",
    "text/csv",
    "text/plain",
    "application/json",
    "application/zip",
]
ANSWER_RATE_LIMIT_PER_MINUTE = env_int("ANSWER_RATE_LIMIT_PER_MINUTE", 30)

# --- Retention -------------------------------------------------------------------------
# How long data is kept, in days, before the daily job (backoffice.tasks.retention_run)
# deletes it (backoffice/retention.py). A record is deleted once it is older than its period.


# Activity records (page views, searches, applications): 2 years after they happened.
RETENTION_ACTIVITY_DAYS = env_positive_int("RETENTION_ACTIVITY_DAYS", 730)
# What the site inferred about a student (a score, a prediction): 1 year after it was made.
# A result speaks of one hiring season; the activity records it was made from stay longer.
RETENTION_INFERENCE_DAYS = env_positive_int("RETENTION_INFERENCE_DAYS", 365)
# Records of provision to a company (APPI Art. 29): 3 years after the provision (its last
# time, for a bulk record).
RETENTION_PROVISION_DAYS = env_positive_int("RETENTION_PROVISION_DAYS", 1095)
# A closed account's remains (the anonymous row, its consent ledger, acceptances, requests
# and certificates): 3 years after closing, the provision records' period, then all goes.
RETENTION_CLOSED_ACCOUNT_DAYS = env_positive_int("RETENTION_CLOSED_ACCOUNT_DAYS", 1095)
# A company's answer links: 90 days after it answered (or after the request closed, for a
# task staff closed); until then a used link shows the recorded answer.
RETENTION_ANSWER_LINK_DAYS = env_positive_int("RETENTION_ANSWER_LINK_DAYS", 90)
# The files of a closed request (report, certificate, companies' files): 1 year after it
# closed. The request, its tasks and its timeline stay.
RETENTION_REQUEST_FILE_DAYS = env_positive_int("RETENTION_REQUEST_FILE_DAYS", 365)
# The consent API's stored Idempotency-Key answers: 7 days after the call (a retry comes
# within minutes; later, the same key records anew).
RETENTION_IDEMPOTENCY_KEY_DAYS = env_positive_int("RETENTION_IDEMPOTENCY_KEY_DAYS", 7)
# Rows deleted per statement, so a large backlog never holds a long lock.
RETENTION_BATCH_SIZE = env_positive_int("RETENTION_BATCH_SIZE", 10_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # No log line holds a usable secret: answer links and reset/confirmation keys in a
    # request's path or a message are masked before any handler writes them.
    "filters": {"secrets": {"()": "portal.shared.logs.RedactSecrets"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers (the console one when DEBUG, mail to ADMINS otherwise, the
        # development server's) would write a request's path unmasked: everything goes to
        # the root's handler above instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "INFO"},
        # WeasyPrint logs every layout step at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
if CELERY_TASK_ALWAYS_EAGER:
    # In-process tasks would log every run into the web server's console.
    LOGGING["loggers"]["celery.app.trace"] = {"level": "WARNING"}
    LOGGING["loggers"]["kombu.connection"] = {"level": "ERROR"}
