from disclosure.views.account import account_close_view
from disclosure.views.company import answer
from disclosure.views.source import source_callback
from disclosure.views.student import (
    request_detail,
    request_file_download,
    request_list,
    request_new,
)

__all__ = [
    "account_close_view",
    "answer",
    "request_detail",
    "request_file_download",
    "request_list",
    "request_new",
    "source_callback",
]
