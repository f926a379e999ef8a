from django.conf import settings


def site(request):
    return {
        "SITE_NAME": settings.SITE_NAME,
        "SUPPORT_EMAIL": settings.SUPPORT_EMAIL,
        # The sign-in page says how long a sign-in lasts (portal/session_lifetime.py).
        "SESSION_LIMITS": {
            "idle": settings.SESSION_IDLE_MINUTES,
            "idle_staff": settings.SESSION_IDLE_MINUTES_STAFF,
            "hours": settings.SESSION_MAX_HOURS,
        },
    }
