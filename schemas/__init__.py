"""The taskforce event contract, version 1, as frozen pydantic models.

Public events (what municipal systems publish and what reporting consumers read) live in
`events`, `commands` and `summary`; the internal reporting events between the services live
in `reporting`. `decode` turns raw Kafka record values into models or a rejection reason.
"""
