"""Demo data that tells the 2019 story, and (with --students N) a large set for benchmarks.

    python manage.py seed_demo                  # purposes, employers, 3 policy versions,
                                                # staff + demo student + 30 students
    python manage.py seed_demo --students 100000

The data is demo/data/ (people, companies, policy texts, stories; see demo/README.md) and
demo/ makes the rows. Running it again changes nothing: only what is missing is created.

The portal's apps are wired together here, in the project's shell, so this command (and
demo/) may import consent and disclosure as well as the core models.
"""

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test import override_settings

from demo.bulk import seed_bulk
from demo.load import load
from demo.seed import Seeder
from demo.specs import Demo, DemoDataError


class Command(BaseCommand):
    help = (
        "Create demo data (purposes, client companies, the 2018.04/2018.10/2019.03 policy "
        "versions, a staff user and students with acceptances and activity). Safe to run "
        "again. --students N adds N bulk students for benchmarks."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--students",
            type=int,
            default=0,
            metavar="N",
            help="Also make N bulk students (bulk-NNNNNNN@example.jp) for benchmarks.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=2000,
            help="Bulk students created per transaction (default 2000).",
        )

    def handle(self, *args, students: int = 0, batch_size: int = 2000, **options):
        if students < 0:
            raise CommandError("--students must be 0 or more")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            demo = load()
        except DemoDataError as exc:
            raise CommandError(str(exc)) from exc
        seeder = Seeder(demo)

        with transaction.atomic():
            seeder.base()
        # The receipts and stop-use notices these changes queue (sent when the transaction
        # commits) go to fictional addresses: keep them off the console.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            with transaction.atomic():
                seeder.consents()
                seeder.inferences()
            seeder.requests()
        # After the stories' requests: those predate the sources and so never call them.
        seeder.sources()

        self.stdout.write(seeder.summary())
        if students:
            seed_bulk(
                demo,
                self.stdout,
                students,
                batch_size,
                seeder.password_hash,
                seeder.versions,
                seeder.employers,
            )
        self.print_logins(demo)

    def print_logins(self, demo: Demo) -> None:
        site = settings.SITE_URL.rstrip("/")
        password, secret = demo.password, demo.totp_secret
        self.stdout.write(
            self.style.SUCCESS("\nDemo data is ready. Start the site and sign in:")
            + f"\n\n  Site:     {site}/"
            + "".join(
                f"\n  {'Student:' if n == 0 else '':10}{story.email} / {password}"
                f"\n            ({story.login_note})"
                for n, story in enumerate(demo.logins)
            )
            + "".join(
                f"\n  {'Staff:' if n == 0 else '':10}{staff.email} / {password}"
                f"  ({'superuser' if staff.superuser else staff.role})"
                for n, staff in enumerate(demo.staff)
            )
            + f"\n            admin at {site}/admin/"
            "\n\n  Staff sign in with a second factor. Add this key to an authenticator app"
            "\n  (Google Authenticator, 1Password, ...) as a time-based (TOTP) key:"
            f"\n            {secret}"
            f"\n            otpauth://totp/demo-staff?secret={secret}&digits=6&period=30"
            "&issuer=demo"
            "\n  and type its 6-digit code when asked; or type one of these recovery codes"
            "\n  (each works once):"
            + "".join(
                f"\n            {staff.email}: {' '.join(recovery_codes_left(staff.email)[:3])}"
                for staff in demo.staff
            )
            + "\n"
        )


def recovery_codes_left(email: str) -> list[str]:
    codes = Authenticator.objects.filter(
        user__email=email, type=Authenticator.Type.RECOVERY_CODES
    ).first()
    return codes.wrap().get_unused_codes() if codes else []
