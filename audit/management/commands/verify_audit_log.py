from django.core.management.base import BaseCommand, CommandError

from audit.log import audit_verify


class Command(BaseCommand):
    help = (
        "Recompute the audit log's SHA-256 chain and report the first entry that was edited, "
        "deleted or inserted out of turn. Exits with status 1 if the chain is broken."
    )

    def handle(self, *args, **options):
        report = audit_verify()
        if not report.intact:
            raise CommandError(
                f"The audit log is broken at {report.first_break} ({report.checked} entries read)."
            )
        self.stdout.write(f"The audit log is intact: {report.checked} entries, chain unbroken.")
