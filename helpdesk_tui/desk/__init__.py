"""The help-desk rules: lifecycle, priorities, escalation, templates, counters."""
