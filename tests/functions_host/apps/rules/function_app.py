"""A purpose-made app with one function per host rule the fake host must follow."""

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="hello", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Sync, anonymous: echoes what the worker built."""
    return func.HttpResponse(
        json.dumps(
            {
                "method": req.method,
                "url": req.url,
                "params": dict(req.params),
                "headers": dict(req.headers),
                "invocation_id": context.invocation_id,
                "function_name": context.function_name,
            }
        ),
        mimetype="application/json",
    )


@app.route(route="orders/{id:int}/{part?}", methods=["GET", "POST"])
async def order(req: func.HttpRequest) -> func.HttpResponse:
    """Async, function level (the app's default): echoes route values and body."""
    return func.HttpResponse(
        json.dumps({"route": dict(req.route_params), "body": req.get_body().decode()}),
        status_code=201 if req.method == "POST" else 200,
        mimetype="application/json",
    )


@app.route(route="manage/reset", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
def reset(req: func.HttpRequest) -> str:
    """Admin level; returns a plain string."""
    return "reset"


@app.route(route="broken", auth_level=func.AuthLevel.ANONYMOUS)
def broken(req: func.HttpRequest) -> func.HttpResponse:
    """Raises: the host answers 500."""
    raise RuntimeError("boom")


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer")
def tick(timer: func.TimerRequest) -> None:
    """A timer on a schedule taken from an app setting."""
