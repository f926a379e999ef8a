"""Every change to policies, consents and provisions goes through these functions."""

from consent.services.consents import (
    ConsentRefused,
    consent_grant,
    consent_lapse_after_acceptance,
    consent_withdraw,
    consent_withdraw_all,
    receipt_context,
)
from consent.services.policies import (
    EDITABLE_FIELDS,
    AcceptanceDue,
    AcceptanceRefused,
    policy_accept,
    policy_acceptance_due,
    policy_publish,
    policy_update_draft,
    previous_acceptance,
)
from consent.services.provisions import (
    CheckResult,
    ProvisionRefused,
    consent_check,
    provision_record,
    purpose_code_possible,
    record_provision,
)

__all__ = [
    "EDITABLE_FIELDS",
    "AcceptanceDue",
    "AcceptanceRefused",
    "CheckResult",
    "ConsentRefused",
    "ProvisionRefused",
    "consent_check",
    "consent_grant",
    "consent_lapse_after_acceptance",
    "consent_withdraw",
    "consent_withdraw_all",
    "policy_accept",
    "policy_acceptance_due",
    "policy_publish",
    "policy_update_draft",
    "previous_acceptance",
    "provision_record",
    "purpose_code_possible",
    "receipt_context",
    "record_provision",
]
