"""The built-in web dashboard: its read endpoints' logic and the static page that calls the API."""
