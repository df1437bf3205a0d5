"""The HTTP side of the server: REST API and webhooks."""
