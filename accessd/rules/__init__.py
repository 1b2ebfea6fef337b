"""Event rules: a condition on events, schedules or a manual trigger, and actions."""
