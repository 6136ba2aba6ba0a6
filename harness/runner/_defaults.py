"""Runner defaults, importable without torch or Optuna (the CLI shows them in --help)."""

HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 30
