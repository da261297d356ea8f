"""The reporting service's pure domain: periods, figures, highlights and publishing rules.

Nothing here does I/O or reads a clock; every rule of EVENTS.md "Periods" and
"Output topic taskforce.summaries" lives in one of these modules.
"""
