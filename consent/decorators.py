def data_rights_page(view):
    """Mark a view that must stay reachable while a policy acceptance is pending.

    Seeing one's own data, withdrawing consent and filing requests are rights; a pending
    re-acceptance never stands in front of them (see PolicyAcceptanceMiddleware).
    """
    view.data_rights_page = True
    return view
