"""Journeys: multi-step flows (``[journeys.NAME]``), their state machine, runs and reports."""
