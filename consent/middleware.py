from urllib.parse import urlencode

from django.shortcuts import redirect
from django.urls import reverse

from consent.services import policy_acceptance_due

# The admin and the API (which answers JSON, never a redirect to an HTML page).
ALWAYS_OPEN_NAMESPACES = {"admin", "api"}
ACCOUNT_PAGE_PREFIXES = ("account_", "mfa_", "socialaccount_", "openid_connect_")


class PolicyAcceptanceMiddleware:
    """Send a student who must accept a (new, material) policy version to the acceptance
    page before anything else, except pages marked @data_rights_page and account pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.is_staff:
            return None
        if getattr(view_func, "data_rights_page", False):
            return None
        match = request.resolver_match
        if match is None or match.namespace in ALWAYS_OPEN_NAMESPACES:
            return None
        # allauth's account and two-factor pages (mfa_*): a student can always secure the
        # account, and the sign-in's code step comes before any of this. Likewise linking the
        # job site's account (socialaccount_*, the provider's login and callback).
        if match.url_name and match.url_name.startswith(ACCOUNT_PAGE_PREFIXES):
            return None
        if policy_acceptance_due(student=user) is None:
            return None
        url = reverse("consent:accept")
        if request.method == "GET":
            url += "?" + urlencode({"next": request.get_full_path()})
        return redirect(url)
