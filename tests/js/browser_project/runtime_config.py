import time

from runtime import Unauthorized


def authenticate(request):
    """``let-me-in``: ann; ``user:<name>``: that user; ``lease:<n>``: ann, for 2 s (the server asks for a
    refresh after half of it)."""
    token = request.token or ""
    if token == "let-me-in":
        return {"user": "ann"}
    if token.startswith("user:"):
        return {"user": token[5:]}
    if token.startswith("lease:"):
        return {"user": "ann", "expires_at": time.time() + 2.0}
    raise Unauthorized("bad token")
