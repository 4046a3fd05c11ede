"""HTTP building blocks that know nothing of the engine: address sets, header rules."""
