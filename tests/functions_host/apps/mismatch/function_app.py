"""A parameter with no binding: the worker fails to index the whole app."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="fine")
def fine(req: func.HttpRequest) -> str:
    """Would be served, but the app indexes with zero functions."""
    return "fine"


@app.route(route="mismatch")
def mismatch(request: func.HttpRequest) -> str:
    """The trigger binding is named `req` by default, the parameter `request`."""
    return "never"
