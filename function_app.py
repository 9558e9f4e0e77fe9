"""Azure Functions requires a `function_app.py` in the app root, so this file exists.

The app itself is the `function_app/` package next to it: a package wins over a module of the same
name, so `import function_app` (what the Python worker and `durable-ext start` do) imports the
package and never this file. It stays valid Python that re-exports the app, for tools that open it
directly.
"""

from function_app import app  # resolves to the function_app/ package

__all__ = ["app"]
