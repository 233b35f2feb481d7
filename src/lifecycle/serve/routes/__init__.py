"""The API's routers, one per protocol or concern; ``lifecycle.serve.app`` includes them all."""
