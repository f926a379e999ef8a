"""Staff's view of data-rights requests: the list, each request with its companies and
timeline, and the few things staff do by hand (DESIGN.md, issue 4 "Staff (admin)").

Nothing is edited in a form here. Every change is a small form (a reason, and what the action
needs) that calls one function of `disclosure.services`, which records it in the timeline; the
same transaction writes it to the staff audit log. Each action has its own permission, given to
a role in backoffice/roles.py: without it the action is neither shown nor allowed (403).

One module per part: requests (the list and each request's page, with its inlines), actions
(the staff actions on that page), tasks (every company's task and its answer links), timeline,
sources (the site's own systems), workspace (companies' workspace links, revocable), webhooks
(the companies' webhooks and their deliveries), digests (what companies on a digest were
sent), employers (the employer admin's question about
open requests), corrections (the inferences' dispute queue, whose answer ends a correction's
own part); and the filters, forms and displays they share (filters, forms, common).
"""

# In the order the models were registered when this was one module (DataRequest first), and
# the employer admin last, as before: it replaces the one portal's admin registered.
# isort: off
from disclosure.admin import requests  # noqa: F401
from disclosure.admin import tasks  # noqa: F401
from disclosure.admin import timeline  # noqa: F401
from disclosure.admin import sources  # noqa: F401
from disclosure.admin import workspace  # noqa: F401
from disclosure.admin import webhooks  # noqa: F401
from disclosure.admin import digests  # noqa: F401
from disclosure.admin import employers  # noqa: F401
from disclosure.admin import corrections  # noqa: F401
# isort: on

# Imported from here by the dashboard (backoffice/dashboard.py) and the tests.
from disclosure.admin.common import days_left_text
from disclosure.admin.filters import FAILED_EMAIL, NOT_DONE

__all__ = ["FAILED_EMAIL", "NOT_DONE", "days_left_text"]
