"""An activity with a blob output binding stacked on it: refused when the app is imported."""

import azure.functions as func

import durable_ext as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.blob_output(arg_name="archive", path="archive/{rand-guid}", connection="AzureWebJobsStorage")
@app.activity_trigger(input_name="order")
def archive_order(order: dict, archive: func.Out[str]) -> None:
    archive.set(str(order))
