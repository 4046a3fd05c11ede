"""propylon's reference identity service."""
