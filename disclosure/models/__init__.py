"""Data-rights requests (disclosure, deletion, cessation, correction), one tracked task per company.

Imports `consent` and the core models, never the other way round (DESIGN.md, "Layout").
Every name is re-exported here, so `from disclosure.models import ...` and the migrations
(`disclosure.models._source_secret`, `disclosure.models.validate_source_endpoint`) read as
before the package was split.
"""

from disclosure.models.companies import (
    CESSATION_ATTESTATION,
    DELETION_ATTESTATION,
    AnswerLink,
    RecipientTask,
    reader_statement,
    token_hash,
)
from disclosure.models.corrections import Correction
from disclosure.models.digests import CompanyDigest, DigestItem
from disclosure.models.requests import DataRequest
from disclosure.models.sources import (
    DataSource,
    SourceTask,
    _source_secret,
    validate_source_endpoint,
)
from disclosure.models.timeline import RequestEvent, RequestFile
from disclosure.models.webhooks import Webhook, WebhookDelivery
from disclosure.models.workspace import WorkspaceEvent, WorkspaceLink

__all__ = [
    "CESSATION_ATTESTATION",
    "DELETION_ATTESTATION",
    "AnswerLink",
    "CompanyDigest",
    "Correction",
    "DataRequest",
    "DataSource",
    "DigestItem",
    "RecipientTask",
    "RequestEvent",
    "RequestFile",
    "SourceTask",
    "Webhook",
    "WebhookDelivery",
    "WorkspaceEvent",
    "WorkspaceLink",
    "_source_secret",
    "reader_statement",
    "token_hash",
    "validate_source_endpoint",
]
