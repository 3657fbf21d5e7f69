"""Triggers that start runs without a person pressing run_now: schedules (cron in a time zone,
evaluated by beat) and inbound webhooks (a secret URL whose JSON body becomes the inputs)."""
