"""The impact report's part for inferences (issue 21): for one purpose, the results made
without a grant of it at the time. The intake refuses them (inferences/services/intake.py),
so the count must be zero; the report counts them from the ledgers, independently of the
intake, so that a row written around it (a script, a restore, a bug) shows.

A result counts as made with a grant when the student's consent ledger holds a grant of the
purpose for the result's company made at or before the result (allowing the intake's clock
skew), and no withdrawal or lapse of it between that grant and the result. Written as SQL
(`inferences_without_grant_sql` prints it, docs/inferences.md shows it):

    SELECT … FROM inference JOIN model ON … WHERE model.purpose_id = %s
    AND NOT EXISTS (
      SELECT 1 FROM consentevent g
      WHERE g.student_id = inference.student_id AND g.employer_id = inference.employer_id
        AND g.purpose_id = %s AND g.action = 'grant'
        AND g.occurred_at <= inference.made_at + skew
        AND NOT EXISTS (
          SELECT 1 FROM consentevent w
          WHERE (w.student_id, w.employer_id, w.purpose_id) = (g.student_id, …)
            AND w.action <> 'grant'
            AND w.occurred_at > g.occurred_at AND w.occurred_at <= inference.made_at))

Each probe walks the (student, employer, -occurred_at) index of the consent ledger.
"""

from django.db.models import Exists, OuterRef, QuerySet

from consent.models import ConsentEvent, Purpose
from consent.services.provisions import CLOCK_SKEW
from inferences.models import Inference

GRANT = ConsentEvent.Action.GRANT.value


def inferences_without_grant(*, purpose: Purpose) -> QuerySet:
    """The results of models serving `purpose` made when the student had no grant of it for
    the result's company (newest first)."""
    ended_before_result = ConsentEvent.objects.filter(
        student_id=OuterRef(OuterRef("student_id")),
        employer_id=OuterRef(OuterRef("employer_id")),
        purpose_id=purpose.pk,
        occurred_at__gt=OuterRef("occurred_at"),
        occurred_at__lte=OuterRef(OuterRef("made_at")),
    ).exclude(action=GRANT)
    grant_standing = ConsentEvent.objects.filter(
        student_id=OuterRef("student_id"),
        employer_id=OuterRef("employer_id"),
        purpose_id=purpose.pk,
        action=GRANT,
        occurred_at__lte=OuterRef("made_at") + CLOCK_SKEW,
    ).filter(~Exists(ended_before_result))
    return (
        Inference.objects.filter(model__purpose_id=purpose.pk)
        .filter(~Exists(grant_standing))
        .order_by("-made_at", "-pk")
    )


def inferences_without_grant_sql(*, purpose: Purpose) -> str:
    """The query the report runs, as the database receives it (shown to staff)."""
    sql, params = inferences_without_grant(purpose=purpose).values("pk").query.sql_with_params()
    return sql % tuple(f"'{p}'" if isinstance(p, str) else p for p in params)
