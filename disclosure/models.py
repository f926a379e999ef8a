# DataRequest, RecipientTask and RequestEvent arrive with the requests issue; the app is
# installed now so its migrations start from the same foundation as the others.
