"""Staff's admin for the register: the models (drafted by a Privacy officer, activated once
and final), and the inferences, objections, notices and disputes (read-only ledgers, with
staff's answer to a dispute), and the purposes' impact report extended with the inferences
made without a grant."""

# isort: off
from inferences.admin import impact  # noqa: F401
from inferences.admin import models  # noqa: F401
from inferences.admin import records  # noqa: F401
# isort: on
