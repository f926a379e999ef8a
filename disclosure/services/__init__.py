"""Data-rights requests: file, do the portal's part, pass on, remind, answer, complete.

Every state change is a function here, called by the student's views, the company answer
page, the admin's actions and the Celery tasks alike. Work for Celery is queued through
`disclosure.enqueue` once the transaction commits (this package never imports the tasks,
which import it); each task claims its row with a conditional UPDATE.
"""

from disclosure.models import DataRequest, SourceTask, WebhookDelivery
from disclosure.services._common import Kind
from disclosure.services.companies import (
    ANSWERS_BY_KIND,
    CONTACT_CHANGED,
    AnswerRefused,
    employer_tasks_elsewhere,
    employer_tasks_resend,
    link_lookup,
    recipient_task_answer,
    recipient_task_close,
    recipient_task_remind,
    recipient_task_resend,
    recipient_task_send,
)
from disclosure.services.dispatch import recipient_tasks_send
from disclosure.services.filing import (
    Recipient,
    RequestRefused,
    request_cancel,
    request_certificate_store,
    request_extend,
    request_file,
    request_recipients,
    request_report_replace,
    request_report_store,
)
from disclosure.services.sources import (
    SOURCE_ANSWERS_BY_KIND,
    SOURCE_DATA_MAX_BYTES,
    SOURCE_MAX_ATTEMPTS,
    SOURCE_WAITING,
    SourceAnswerRefused,
    SourceCallError,
    source_call_body,
    source_task_answer,
    source_task_call,
    source_task_close,
    source_task_recall,
)
from disclosure.services.sweep import CERTIFICATE_RETRY_DAYS, SWEEP_LIMIT, requests_sweep
from disclosure.services.webhooks import (
    WebhookError,
    webhook_backoff,
    webhook_body,
    webhook_deliver,
    webhook_delivery_retry,
)
from disclosure.services.workspace import (
    BULK_ANSWERS,
    BulkResult,
    TaskFilter,
    workspace_answer_bulk,
    workspace_answer_one,
    workspace_link_for_task,
    workspace_link_lookup,
    workspace_link_revoke,
    workspace_links_request,
    workspace_sign_in,
    workspace_tasks,
)

__all__ = [
    "ANSWERS_BY_KIND",
    "CERTIFICATE_RETRY_DAYS",
    "CONTACT_CHANGED",
    "SOURCE_ANSWERS_BY_KIND",
    "SOURCE_DATA_MAX_BYTES",
    "SOURCE_MAX_ATTEMPTS",
    "SOURCE_WAITING",
    "SWEEP_LIMIT",
    "AnswerRefused",
    # disclosure.tasks reads these as services.DataRequest, .SourceTask, .WebhookDelivery, .Kind.
    "DataRequest",
    "Kind",
    "SourceTask",
    "WebhookDelivery",
    "Recipient",
    "RequestRefused",
    "SourceAnswerRefused",
    "SourceCallError",
    "employer_tasks_elsewhere",
    "employer_tasks_resend",
    "link_lookup",
    "recipient_task_answer",
    "recipient_task_close",
    "recipient_task_remind",
    "recipient_task_resend",
    "recipient_task_send",
    "recipient_tasks_send",
    "request_cancel",
    "request_certificate_store",
    "request_extend",
    "request_file",
    "request_recipients",
    "request_report_replace",
    "request_report_store",
    "requests_sweep",
    "source_call_body",
    "source_task_answer",
    "source_task_call",
    "source_task_close",
    "source_task_recall",
    "BULK_ANSWERS",
    "BulkResult",
    "TaskFilter",
    "workspace_answer_bulk",
    "workspace_answer_one",
    "workspace_link_for_task",
    "workspace_link_lookup",
    "workspace_link_revoke",
    "workspace_links_request",
    "workspace_sign_in",
    "workspace_tasks",
    "WebhookError",
    "webhook_backoff",
    "webhook_body",
    "webhook_deliver",
    "webhook_delivery_retry",
]
