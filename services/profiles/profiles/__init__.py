"""propylon's reference profiles service."""
