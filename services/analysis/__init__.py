"""Analysis: the Task Force's case reviews and Ankestyrelsen's legal findings."""
