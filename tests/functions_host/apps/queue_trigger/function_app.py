"""A plain queue-trigger app: `work` returns normally unless the body says "fail"."""

import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="message", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def work(message: func.QueueMessage) -> None:
    if message.get_body() == b"fail":
        raise RuntimeError("asked to fail")
