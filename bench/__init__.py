"""The taskforce benchmark: services against the raw limit (see bench/README.md)."""
