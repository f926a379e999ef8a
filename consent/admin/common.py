"""The permissions of the consent admin's staff actions, and a helper its modules share."""

# Granted to roles in backoffice/roles.py.
RUN_IMPACT_REPORT = "consent.run_impact_report"
SEND_RECONSENT_MAILING = "consent.send_reconsent_mailing"
PUBLISH_POLICYVERSION = "consent.publish_policyversion"
RECORD_CONSENT_CHANGE = "consent.add_consentevent"


def _iso(value):
    return value.isoformat() if value is not None else None
