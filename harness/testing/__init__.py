"""What libkd's own tests and benchmarks share (as `optuna.testing` does for Optuna's): a
throwaway PostgreSQL server on a loopback port. Not part of the command line."""
