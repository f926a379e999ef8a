"""A student's results erased: by a deletion request (with their activity records, in the
request's scope) and when they close their account.

What goes and what stays (docs/inferences.md, "Erased, and what is kept"):
- every result (`Inference`) in scope goes, and with it its disputes (the student's words
  about a result that no longer exists, and staff's answer to them: staff's answer stays in
  the audit log);
- the objections stay: an objection holds no result, only that the student objected to a
  model (its code and when), and it is what stops the model's next result about them;
  erasing it would let the model start again;
- the objection notices stay, as the proof that each company was told to stop, but the
  text of their emails, which listed the results, is erased once they went (the subject,
  the company's address, the time and the state stay);
- a record of provision made when a result was handed over stays (APPI Art. 29-30, 3 years):
  it names the model and when, never the output.
"""

from django.db import connection

from inferences.models import Inference, InferenceObjection, ObjectionNotice
from portal.models import EmailMessage, Employer, User
from portal.shared.deletion import delete_set

# What an objection notice's email keeps of its text once the results it listed are erased.
ERASED_TEXT = "(erased: the results this notice listed were erased at the student's request)"

# The objection notices' emails that went (or failed for good), blanked. Written once as
# SQL: a deletion filing waits for it, and Django took three times longer to build the
# UPDATE and its subquery than the database to run it. Its parameters: the text, the two
# states, the student's id, then (`_SCOPED`) the companies' ids.
_BLANK_NOTICES = f"""UPDATE {EmailMessage._meta.db_table} SET body_text = %s, body_html = ''
WHERE status IN (%s, %s) AND id IN (
  SELECT n.email_id FROM {ObjectionNotice._meta.db_table} n
  JOIN {InferenceObjection._meta.db_table} o ON o.id = n.objection_id
  WHERE o.student_id = %s{{scope}}
)"""  # noqa: S608 - the models' tables; every value a parameter
_SCOPED = " AND n.employer_id IN ({})"


def inferences_erase(*, student: User, employers: list[Employer] | None = None) -> int:
    """Erase the student's results made for `employers` (None: every company), with their
    disputes; blank the text of the objection notices that listed them. Returns how many
    results were erased. Called inside the caller's transaction, under the student's lock."""
    results = Inference.objects.filter(student=student)
    if employers is not None:
        results = results.filter(employer__in=employers)
    erased = delete_set(results)  # and their disputes (CASCADE)
    params = [ERASED_TEXT, EmailMessage.Status.SENT, EmailMessage.Status.FAILED, student.pk]
    scope = ""
    if employers is not None:
        if not employers:
            return erased
        scope = _SCOPED.format(", ".join(["%s"] * len(employers)))
        params += [employer.pk for employer in employers]
    with connection.cursor() as cursor:
        cursor.execute(_BLANK_NOTICES.format(scope=scope), params)
    return erased
