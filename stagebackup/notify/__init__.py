"""Notifications through Apprise: targets (notify/targets.py), the outbox the jobs layer and the stale check
write to (outbox.py, stale.py), the messages in each target's language (messages.py), and the delivery loop
the scheduler process runs (courier.py). Nothing here ever changes a job."""
