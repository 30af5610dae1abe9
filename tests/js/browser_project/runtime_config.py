from runtime import Unauthorized


def authenticate(request):
    if request.token != "let-me-in":
        raise Unauthorized("bad token")
    return {"user": "ann"}
