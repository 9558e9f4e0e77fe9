"""Functions the host refuses one by one (the others still run)."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="runtime/webhooks/durabletask/instances/{instanceId}")
def status(req: func.HttpRequest) -> str:
    """Reserved: starts with `runtime`."""
    return "never"


@app.route(route="administrator/tools")
def tools(req: func.HttpRequest) -> str:
    """Reserved too: the host checks the prefix as text, `admin...`."""
    return "never"


@app.route(route="items", methods=["GET"])
def list_items(req: func.HttpRequest) -> str:
    """Served."""
    return "items"


@app.route(route="Items/", methods=["GET", "POST"])
def add_item(req: func.HttpRequest) -> str:
    """Same route text (case and slashes aside) with an overlapping method: in error."""
    return "never"
