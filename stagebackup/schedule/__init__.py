"""Schedules: cron expressions (``cron``), the single-scheduler lease (``lease``) and the loop that enqueues
scheduled runs (``service``)."""
