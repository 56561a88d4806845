"""The `selftrain` command line and the local Prefect server it manages."""
