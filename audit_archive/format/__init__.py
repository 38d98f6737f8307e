"""The data contract, pure: formats and hashing with no I/O, no clients, no Dagster."""
