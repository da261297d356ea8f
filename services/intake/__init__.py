"""Intake: applications, courses and notifications of concern (underretninger)."""
