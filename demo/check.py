"""Does the demo data name only what exists? Every company, purpose, version, screen, kind,
language and student a file names, checked against the others and the apps' choices."""

from collections import Counter

from consent.api.openapi_inferences import REFUSALS
from consent.models import Purpose, Screen
from demo.specs import Demo, placeholders
from disclosure.models import DataRequest, RecipientTask
from inferences.models import InferenceModel
from portal.models import ActivityRecord, Language

CONSENT_ACTIONS = {"grant", "withdraw", "provide"}
EXPECT = {"status", "overdue"}
# What the portal may answer a story's result: recorded, or one of the API's refusals.
INFERENCE_OUTCOMES = {"stored", *REFUSALS}


def problems(demo: Demo) -> list[str]:
    found: list[str] = []
    purposes = {p.get("code") for p in demo.purposes}
    versions = [v.label for v in demo.policy.versions]
    companies = {c.name for c in demo.companies}
    languages = set(Language.values)

    def unique(what: str, names: list[str]) -> None:
        found.extend(
            f"{what} {name!r} appears twice" for name, n in Counter(names).items() if n > 1
        )

    def known(where: str, what: str, name: str, names) -> None:
        if name not in names:
            found.append(f"{where}: no {what} {name!r}")

    fields = {f.name for f in Purpose._meta.concrete_fields} - {"id"}
    for purpose in demo.purposes:
        found.extend(f"purposes.toml: Purpose has no field {k!r}" for k in set(purpose) - fields)
    unique("purpose", [p.get("code") for p in demo.purposes])
    unique("company", [c.name for c in demo.companies])
    unique("version", versions)
    for company in demo.companies:
        if not company.contacts:
            found.append(f"companies.toml: {company.name} has no contact")
        for contact in company.contacts:
            known(f"companies.toml: {company.name}", "language", contact.language, languages)

    staff = [s.email for s in demo.staff]
    if [s.superuser for s in demo.staff].count(True) != 1:
        found.append("staff.toml: exactly one superuser is needed (it publishes the policy)")
    known("policies/versions.toml", "staff member", demo.policy.published_by, staff)
    for version in demo.policy.versions:
        for code in version.purposes:
            known(f"policies {version.label}", "purpose", code, purposes)

    filler = demo.filler
    for group in filler.groups:
        for step in group.accepts:
            known("students.toml: group", "version", step.version, versions)
            for screen in step.screens:
                known("students.toml: group", "screen", screen, Screen.values)
    for student in filler.students:
        known(f"students.toml: {student.email}", "language", student.language, languages)
    rules = filler.consents
    known("students.toml: consents", "version", rules.version, versions)
    known("students.toml: consents", "purpose", rules.analysis, purposes)
    known("students.toml: consents", "purpose", rules.provision, purposes)

    activity = demo.activity
    if list(activity.kinds) != ActivityRecord.Kind.values:
        found.append(f"activity.toml: the kinds must be {ActivityRecord.Kind.values}, in order")
    for name, kind in activity.kinds.items():
        for template in filter(None, (kind.detail, kind.detail_about_company)):
            drawn = placeholders(template) - {"company"}
            for word in drawn:
                known(f"activity.toml: {name}", "list of words", word, activity.words)
            if len(drawn) > 1:
                found.append(f"activity.toml: {name}: one word drawn at most, not {drawn}")

    model_fields = {f.name for f in InferenceModel._meta.concrete_fields} - {"id"}
    models = [model.code for model in demo.inference_models]
    unique("inference model", [f"{m.code} {m.version}" for m in demo.inference_models])
    for model in demo.inference_models:
        where = f"inference_models.toml: {model.code}"
        found.extend(
            f"{where}: InferenceModel has no field {k!r}" for k in set(model.fields) - model_fields
        )
        known(where, "purpose", model.purpose, purposes)
        known(where, "staff member", model.activated_by, staff)

    defined = [s.email for s in filler.students]
    defined += [story.email for story in demo.stories if story.student]
    unique("user", staff + defined)
    for story in demo.stories:
        where = f"stories/{story.name}.toml"
        known(where, "student", story.email, defined)
        if story.student:
            known(where, "language", story.student.language, languages)
        elif story.acceptances or story.consents or story.login_note:
            found.append(f"{where}: acceptances, consents and a login need a [student] table")
        for acceptance in story.acceptances:
            known(where, "version", acceptance.version, versions)
            known(where, "screen", acceptance.screen, Screen.values)
        for step in story.consents:
            known(where, "consent action", step.action, CONSENT_ACTIONS)
            known(where, "company", step.company, companies)
            known(where, "purpose", step.purpose, purposes)
            if (step.action == "provide") != bool(step.data_items):
                found.append(f"{where}: data_items go with (only) a provide step")
        for step in story.consents:
            if step.days_ago < 0 or (step.days_ago and step.action == "provide"):
                found.append(f"{where}: days_ago is for grants and withdrawals, 0 or more")
        for result in story.inferences:
            known(where, "inference model", result.model, models)
            known(where, "company", result.company, companies)
            known(where, "outcome", result.expect, INFERENCE_OUTCOMES)
            if result.days_ago < 0:
                found.append(f"{where}: days_ago is 0 or more")
            if result.dispute and result.expect != "stored":
                found.append(f"{where}: only a stored result can be disputed")
        for request in story.requests:
            known(where, "request kind", request.kind, DataRequest.Kind.values)
            for answer in request.answers:
                known(where, "company", answer.company, companies)
                known(where, "answer", answer.answer, RecipientTask.Answer.values)
            for key in set(request.expect) - EXPECT:
                found.append(f"{where}: expect has no {key!r} (only {sorted(EXPECT)})")
            if "status" in request.expect:
                known(where, "status", request.expect["status"], DataRequest.Status.values)
            for name in request.expect.get("overdue", []):
                known(where, "company", name, companies)
    return found
