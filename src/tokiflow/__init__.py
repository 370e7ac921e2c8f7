"""Tokiflow: a self-hosted cron-job and heartbeat monitor in one process."""

__version__ = "0.1.0"
