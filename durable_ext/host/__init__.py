"""The local host: the `durable-ext` command line, HTTP server and Azurite autostart."""
