"""What every service needs: settings, Kafka and Mongo wiring, the DLQ guard, idempotent
batch consumption, health and metrics. One place, not four copies."""
