"""The ingestion gateway: municipal systems publish events over HTTPS, each only for itself."""
