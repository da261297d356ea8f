"""Follow-up: development plans, milestone statuses and the 6-weekly follow-up meetings."""
