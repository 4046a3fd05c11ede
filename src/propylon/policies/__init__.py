"""Per-request header policies: forwarding rules, the identity header, request ids."""
