"""The service bus: X-Road (PR-REST) identifiers, the services registry, client credentials and grants."""

from exchange.identifiers import ClientId, IdentifierError, ServiceId

__all__ = ["ClientId", "IdentifierError", "ServiceId"]
