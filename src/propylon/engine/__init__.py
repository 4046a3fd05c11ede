"""The data plane: uvloop + httptools protocols on both sides of the gateway."""
