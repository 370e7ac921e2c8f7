"""Ready-to-paste snippets that ping a monitor from the places jobs run."""

from __future__ import annotations

from dataclasses import dataclass

from tokiflow.storage.monitors import Monitor

CURL = "curl -fsS -m 10 --retry 5 -o /dev/null"


@dataclass(frozen=True)
class Snippet:
    key: str
    title: str
    language: str
    text: str


def cron_line(m: Monitor) -> str:
    """The monitor's own cron expression, or one matching a simple period."""
    if m.schedule_kind == "cron" and m.cron:
        return m.cron
    period = m.period or 0
    if period == 60:
        return "* * * * *"
    if period < 3600 and period % 60 == 0 and 3600 % period == 0:
        return f"*/{period // 60} * * * *"
    if period == 3600:
        return "0 * * * *"
    if period < 86400 and period % 3600 == 0 and 86400 % period == 0:
        return f"0 */{period // 3600} * * *"
    if period == 86400:
        return "0 0 * * *"
    if period == 7 * 86400:
        return "0 0 * * 0"
    return "0 * * * *"


def _systemd_calendar(cron: str) -> str:
    minute, hour, dom, month, dow = (cron.split() + ["*"] * 5)[:5]
    if "/" in minute or "/" in hour or dom != "*" or month != "*" or dow != "*":
        return "hourly"
    if minute.isdigit() and hour == "*":
        return f"*-*-* *:{int(minute):02d}:00"
    if minute.isdigit() and hour.isdigit():
        return f"*-*-* {int(hour):02d}:{int(minute):02d}:00"
    return "hourly"


def client_snippets(m: Monitor, base: str, ping_key: str, sentry_dsn: str) -> list[Snippet]:
    """The same monitor pinged by other monitors' clients, unchanged (docs/clients.md)."""
    cronitor = f"{base}/p/{ping_key}/{m.slug}"
    push = f"{base}/api/push/{m.uuid.replace('-', '')}"
    return [
        Snippet("cronitor", "Cronitor clients", "sh",
                "# cronitor CLI / telemetry URLs: state=run, then complete or fail\n"
                f"{CURL} \"{cronitor}?state=run&series=$RUN\"\n"
                f"{CURL} \"{cronitor}?state=complete&series=$RUN\"\n"),
        Snippet("sentry", "Sentry Crons (sentry-sdk)", "python",
                "import sentry_sdk\nfrom sentry_sdk.crons import monitor\n\n"
                f"sentry_sdk.init(dsn=\"{sentry_dsn}\")\n\n"
                f"@monitor(monitor_slug=\"{m.slug}\")\ndef job():\n    ...\n"),
        Snippet("kuma", "Uptime Kuma push", "sh",
                f"{CURL} \"{push}?status=up&msg=OK&ping=\"\n"),
    ]  # fmt: skip


def snippets(m: Monitor, url: str) -> list[Snippet]:
    """Every snippet for a monitor pinged at `url` (no trailing slash)."""
    cron = cron_line(m)
    tz_line = f"CRON_TZ={m.tz}\n" if m.schedule_kind == "cron" and m.tz != "UTC" else ""
    job = "/usr/local/bin/backup.sh"
    k8s_tz = f"\n  timeZone: {m.tz}" if m.schedule_kind == "cron" and m.tz != "UTC" else ""
    return [
        Snippet("crontab", "crontab + curl", "text",
                f"{tz_line}{cron} {job} && {CURL} {url}\n"),
        Snippet("shell", "Shell script", "sh",
                f"#!/bin/sh\nURL={url}\n{CURL} \"$URL/start\"\n{job}\n"
                f"{CURL} --data-raw \"exit $?\" \"$URL/$?\"\n"),
        Snippet("tokiflow-run", "tokiflow run", "sh",
                f"# reports start, exit status, duration and the output tail\n"
                f"{cron} tokiflow run --url {url} -- {job}\n"),
        Snippet("python", "Python", "python",
                "import urllib.request\n\n"
                f"URL = \"{url}\"\n\n"
                "urllib.request.urlopen(URL + \"/start\", timeout=10)\n"
                "try:\n    run_job()\nexcept Exception:\n"
                "    urllib.request.urlopen(URL + \"/fail\", timeout=10)\n    raise\n"
                "urllib.request.urlopen(URL, timeout=10)\n"),
        Snippet("node", "Node.js", "javascript",
                f"const URL = \"{url}\";\n\n"
                "await fetch(`${URL}/start`);\n"
                "try {\n  await runJob();\n  await fetch(URL);\n} catch (err) {\n"
                "  await fetch(`${URL}/fail`, { method: \"POST\", body: String(err) });\n"
                "  throw err;\n}\n"),
        Snippet("kubernetes", "Kubernetes CronJob", "yaml",
                f"apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {m.slug}\n"
                f"spec:\n  schedule: \"{cron}\"{k8s_tz}\n  jobTemplate:\n    spec:\n"
                "      template:\n        spec:\n          restartPolicy: Never\n"
                "          containers:\n            - name: job\n"
                "              image: alpine:3\n              command: [\"/bin/sh\", \"-c\"]\n"
                f"              args:\n                - \"{job} && wget -q -O- {url} "
                f"|| wget -q -O- {url}/fail\"\n"),
        Snippet("github", "GitHub Actions", "yaml",
                f"on:\n  schedule:\n    - cron: \"{cron}\"  # GitHub reads it in UTC\n"
                "jobs:\n  job:\n    runs-on: ubuntu-latest\n    steps:\n"
                f"      - run: {CURL} {url}/start\n      - run: ./job.sh\n"
                f"      - if: success()\n        run: {CURL} {url}\n"
                f"      - if: failure()\n        run: {CURL} {url}/fail\n"),
        Snippet("systemd", "systemd timer", "ini",
                f"# /etc/systemd/system/{m.slug}.service\n[Unit]\nDescription={m.name}\n\n"
                f"[Service]\nType=oneshot\nExecStart=/usr/local/bin/tokiflow run --url {url} "
                f"-- {job}\n\n# /etc/systemd/system/{m.slug}.timer\n[Timer]\n"
                f"OnCalendar={_systemd_calendar(cron)}\nPersistent=true\n\n"
                "[Install]\nWantedBy=timers.target\n"),
    ]  # fmt: skip
