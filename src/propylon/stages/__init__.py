"""Per-route stages: one module per feature, each a ``plane.stage.RequestStage``."""
