"""The domain, free of HTTP: schedules, monitor states, runs, incidents, the scheduler."""
