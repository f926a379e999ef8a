import threading

# What the token endpoint was sent, field names only (never the values), for the tests to
# read back through /control/token-requests/: the proof that the code_verifier was carried.
TOKEN_REQUESTS: list[list[str]] = []
_lock = threading.Lock()


class TokenRequestLog:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path == "/o/token/":
            with _lock:
                TOKEN_REQUESTS.append(sorted(request.POST.keys()))
        return self.get_response(request)
