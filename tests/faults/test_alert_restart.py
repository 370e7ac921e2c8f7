"""A server killed with an alert in flight sends it after restart, under the same idempotency key."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

from tests.cli_helpers import HookReceiver, Server, run


def test_an_alert_in_flight_at_sigkill_is_delivered_after_restart_under_one_key(
    tmp_path: Path, server_factory: type[Server]
) -> None:
    data = tmp_path / "d"
    receiver = HookReceiver(hang_first=True)
    try:
        run("channels", "add", "--kind", "webhook", "--name", "hook", "--config",
            json.dumps({"url": receiver.url}), data_dir=data)  # fmt: skip
        ms = [
            json.loads(
                run(
                    "monitors",
                    "add",
                    "--name",
                    f"job{i}",
                    "--period",
                    "1d",
                    "--json",
                    data_dir=data,
                ).stdout
            )  # fmt: skip
            for i in range(3)
        ]
        first = server_factory(data)
        first.wait_ready()
        for m in ms:
            urllib.request.urlopen(f"{first.url}/ping/{m['uuid']}/fail").read()
        receiver.wait_for(1)  # the first alert is being sent and hangs; the rest are queued
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        receiver.release()
        second = server_factory(data)
        second.wait_ready()
        receiver.wait_until(
            lambda: len({json.loads(b)["idempotency_key"] for b in receiver.answered}) == 3,
            "all three alerts answered",
        )
        code, _, _ = second.stop()
        assert code == 0
    finally:
        receiver.close()
    # Delivery is at least once: an alert whose answer the killed process never recorded is
    # sent again, always under its first idempotency key, so a receiver that deduplicates on
    # the key sees each alert exactly once.
    answered = {
        json.loads(b)["idempotency_key"]: json.loads(b)["monitor_name"] for b in receiver.answered
    }
    assert sorted(answered.values()) == ["job0", "job1", "job2"]
    hung_key = receiver.requests[0][1]["X-Tokiflow-Idempotency-Key"]
    assert hung_key in answered  # the alert cut off by the kill was delivered after restart
    sent_keys = [h["X-Tokiflow-Idempotency-Key"] for _, h, _ in receiver.requests]
    assert set(sent_keys) == set(answered)
    deliveries = json.loads(run("deliveries", "list", "--json", data_dir=data).stdout)
    assert sorted(d["state"] for d in deliveries) == ["sent", "sent", "sent"]
