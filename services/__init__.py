"""The four taskforce services and what they share."""
