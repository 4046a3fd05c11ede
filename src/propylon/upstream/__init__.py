"""Everything toward the downstream services: connections, pools, request heads."""
