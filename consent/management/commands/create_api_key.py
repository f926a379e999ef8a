"""Make (or revoke) a key for the consent API.

    python manage.py create_api_key --name "Analytics pipeline" --pipeline
    python manage.py create_api_key --name "Aoba Systems HR" --employer 3
    python manage.py create_api_key --name "Job site" --pipeline --scope activity:write
    python manage.py create_api_key --revoke sdp_AbCd      # the prefix shown, or the whole key

The key is printed once; only its SHA-256 and its first characters are stored.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from consent.api.keys import RevokeRefused, ScopeRefused, api_key_create, api_key_revoke
from consent.models import ApiClient
from portal.models import Employer


class Command(BaseCommand):
    help = (
        "Create a consent-API key for the analytics pipeline (--pipeline) or for one employer "
        "(--employer ID), printed once; or revoke one (--revoke PREFIX)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", help="Who the key is for, e.g. 'Analytics pipeline'.")
        parser.add_argument(
            "--pipeline", action="store_true", help="The site's own pipeline: sees every employer."
        )
        parser.add_argument(
            "--employer", type=int, metavar="ID", help="One employer's key: sees only its rows."
        )
        parser.add_argument(
            "--scope",
            action="append",
            choices=ApiClient.Scope.values,
            help="What the key may call (repeat for more): consents (the default: checks, "
            "the feed, provisions), activity:write (sending activity records; pipeline only), "
            "inferences:write (sending the pipeline's inferences; pipeline only), "
            "requests:read and requests:answer (a company's requests; employer keys only).",
        )
        parser.add_argument(
            "--revoke",
            metavar="PREFIX",
            help="Revoke the live key with this prefix (as listed in the admin) or this key.",
        )

    def handle(
        self, *args, name=None, pipeline=False, employer=None, revoke=None, scope=None, **options
    ):
        if revoke is not None:
            if pipeline or employer is not None or name or scope:
                raise CommandError("--revoke takes no other option.")
            try:
                client = api_key_revoke(prefix_or_key=revoke.strip())
            except RevokeRefused as refused:
                raise CommandError(str(refused)) from None
            revoked_at = timezone.localtime(client.revoked_at)
            self.stdout.write(
                f"Revoked {client} (id {client.pk}) at {revoked_at:%Y-%m-%d %H:%M %Z}."
            )
            return

        if pipeline == (employer is not None):
            raise CommandError("Give exactly one of --pipeline and --employer ID.")
        if not name or not name.strip():
            raise CommandError("Give --name, e.g. --name 'Analytics pipeline'.")
        company = None
        if employer is not None:
            company = Employer.objects.filter(pk=employer).first()
            if company is None:
                raise CommandError(f"There is no employer with id {employer}.")
        try:
            client, key = api_key_create(name=name.strip(), employer=company, scopes=scope)
        except ScopeRefused as refused:
            raise CommandError(str(refused)) from None

        sees = "every employer" if company is None else f"employer {company.pk} ({company})"
        self.stdout.write(
            f"Created API key {client.key_prefix}… for {client.name}: {sees}; "
            f"scopes {', '.join(client.scopes)}."
        )
        self.stdout.write("")
        self.stdout.write(f"    {key}")
        self.stdout.write("")
        self.stdout.write(
            self.style.WARNING(
                "Store it now: it cannot be shown again (only its SHA-256 hash is kept)."
            )
        )
        self.stdout.write("Send it in every request as the header: Authorization: Bearer <key>")
