"""Staff's admin for policies, purposes and the consent ledgers (issue 3), with the roles of
issue 5: each staff action checks its own permission (backoffice/roles.py), every change is
written to the audit log, and the ledgers are read-only for everyone.

One module per part: purposes (with the impact report), policies (versions and acceptances),
ledger (consent events and the consents they make), provisions (provision records and stop-use
notices), api_clients; the forms and the permissions they share in forms and common.
"""

# In the order the models were registered when this was one module.
# isort: off
from consent.admin import purposes  # noqa: F401
from consent.admin import policies  # noqa: F401
from consent.admin import ledger  # noqa: F401
from consent.admin import provisions  # noqa: F401
from consent.admin import api_clients  # noqa: F401
# isort: on
