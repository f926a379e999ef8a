"""The staff roles: which group may do what in the back office (issue 5, "Roles").

The spec is plain data, defined once here. The migration `0001_roles` applies it to the
database with `roles_apply`; a later change to the spec needs a new migration calling it again.
The admin checks each permission where it is used (`request.user.has_perm(...)`), so a role is
exactly the list below and nothing else.

Nobody gets change or delete on a ledger (acceptances, consent events, consents, provisions,
stop-use notices, request events, activity records, emails, inferences, objections and their
notices, disputes): those admins refuse them for everyone, superusers included.
"""

SUPPORT = "Support"
PRIVACY_OFFICER = "Privacy officer"

# Reading: requests and their companies, students and everything the portal holds about them.
_SUPPORT_READS = (
    "disclosure.view_datarequest",
    "disclosure.view_recipienttask",
    "disclosure.view_requestevent",
    "disclosure.view_answerlink",  # when each link was made and whether it works; never a token
    "disclosure.view_sourcetask",  # the site's own systems: status and last error
    "disclosure.view_datasource",  # the list of systems; the signing secret is superuser-only
    "disclosure.view_workspacelink",  # companies' workspace links: never a token (issue 19)
    "disclosure.view_workspaceevent",  # what was done with each
    "disclosure.view_webhook",  # companies' webhooks: never the signing secret
    "disclosure.view_webhookdelivery",  # each task pushed, its attempts and last error
    "disclosure.view_companydigest",  # the digests companies were sent
    "portal.view_user",
    "consent.view_policyacceptance",
    "consent.view_consentevent",
    "consent.view_consent",
    "consent.view_provision",
    "consent.view_stopusenotice",
    "portal.view_activityrecord",
    "portal.view_emailmessage",
    "portal.view_employer",
    "portal.view_privacycontact",
    "consent.view_purpose",
    "consent.view_policyversion",
    # What the site inferred about students (issue 21): the models, each result, the
    # students' objections and the notices they sent, and the disputes.
    "inferences.view_inferencemodel",
    "inferences.view_inference",
    "inferences.view_inferenceobjection",
    "inferences.view_objectionnotice",
    "inferences.view_inferencedispute",
)

# Acting on a request that is under way, and on a student's written instruction.
_SUPPORT_ACTIONS = (
    "disclosure.resend_answer_link",
    "disclosure.record_answer",
    "disclosure.extend_due_date",
    # Record a grant or withdrawal the student asked for in writing (the student's admin page).
    "consent.add_consentevent",
    # Answer a student's dispute of an inference, with the reason they read.
    "inferences.answer_inferencedispute",
)

_PRIVACY_OFFICER_EXTRA = (
    # Policy versions: write drafts, publish them.
    "consent.add_policyversion",
    "consent.change_policyversion",
    "consent.publish_policyversion",
    # Inference models: register drafts, activate them (then they never change).
    "inferences.add_inferencemodel",
    "inferences.change_inferencemodel",
    "inferences.activate_inferencemodel",
    # Employers and their privacy contacts.
    "portal.add_employer",
    "portal.change_employer",
    "portal.add_privacycontact",
    "portal.change_privacycontact",
    "portal.delete_privacycontact",
    # Companies' webhooks: switch one off or on, make a new signing secret (shown once to
    # them, audited), deliver a failed push again. Registering a new one stays with superusers.
    "disclosure.change_webhook",
    # Ending a request or a company's task.
    "disclosure.cancel_request",
    "disclosure.close_task",
    # The impact report and the mailing asking students to review the policy.
    "consent.run_impact_report",
    "consent.send_reconsent_mailing",
    # API clients: make keys, rename and revoke them.
    "consent.view_apiclient",
    "consent.add_apiclient",
    "consent.change_apiclient",
    # The staff audit log, and staff looks at students' data (per staff member).
    "audit.view_auditentry",
    "audit.view_staffread",
    # Remove a staff member's lost second factor (portal/second_factor.py).
    "portal.reset_second_factor",
)

ROLES: dict[str, frozenset[str]] = {
    SUPPORT: frozenset(_SUPPORT_READS + _SUPPORT_ACTIONS),
    PRIVACY_OFFICER: frozenset(_SUPPORT_READS + _SUPPORT_ACTIONS + _PRIVACY_OFFICER_EXTRA),
}


class UnknownPermission(LookupError):
    pass


def roles_apply(*, group_model, permission_model, roles: dict | None = None) -> None:
    """Make each group hold exactly its permissions. Takes the models so that a migration
    passes its historical ones. An unknown permission is an error, not a silent gap."""
    for name, wanted in (roles or ROLES).items():
        permissions = []
        for dotted in sorted(wanted):
            app_label, codename = dotted.split(".", 1)
            permission = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is None:
                raise UnknownPermission(f"{dotted} does not exist (role {name!r})")
            permissions.append(permission)
        group, _created = group_model.objects.get_or_create(name=name)
        group.permissions.set(permissions)
