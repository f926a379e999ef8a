"""Staff's admin for the register: the models (drafted by a Privacy officer, activated once
and final), and the inferences, objections, notices and disputes (read-only ledgers, with
staff's answer to a dispute)."""

# isort: off
from inferences.admin import models  # noqa: F401
from inferences.admin import records  # noqa: F401
# isort: on
