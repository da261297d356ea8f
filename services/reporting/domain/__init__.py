"""The reporting service's pure domain: figures, highlights and publishing rules.

Nothing here does I/O or reads a clock; every rule of EVENTS.md "Output topic
taskforce.summaries" lives in one of these modules. The half-year periods are part of the
contract: `schemas.periods`.
"""
