"""Secrets in job output are replaced by [REDACTED]; ordinary log lines are left alone.

The secrets are assembled at run time (prefix + body) so that this file itself does not look
like a leaked credential to secret scanners.
"""

from __future__ import annotations

import base64

import pytest

from tokiflow.redaction import REDACTED, check_patterns, redact, redact_bytes

ALNUM = "aZ3kQ9xW2mP7vL5tR8nB4cY6hJ1dF0gS"  # 32 characters of token-looking noise


def body(n: int, alphabet: str = ALNUM) -> str:
    return (alphabet * (n // len(alphabet) + 1))[:n]


AWS_ID = "AKIA" + "Z3MXN5QRT7VW2YB4"
AWS_TEMP_ID = "ASIA" + "QW3ER5TY7UI9OP2A"
AWS_SECRET = body(38) + "/+"
GCP_API_KEY = "AIza" + body(35)
GH_TOKEN = {p: p + body(36) for p in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")}
GH_PAT = "github_pat_" + body(22) + "_" + body(59)
GL_TOKEN = "glpat-" + body(20)
SLACK_BOT = "xoxb-" + "1234567890-1234567890123-" + body(24)
SLACK_USER = "xoxp-" + "1234567890-1234567890-1234567890123-" + body(32)
SLACK_HOOK = "T0" + body(9).upper() + "/B0" + body(9).upper() + "/" + body(24)
AZURE_KEY = base64.b64encode(bytes(range(64))).decode()
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    + "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvYiJ9."
    + body(43)
)
PEM_BODY = "\n".join(body(64) for _ in range(6))
STRIPE = "sk_" + "live_" + body(24)


SECRETS: list[tuple[str, str, str]] = [
    # (line, the secret that must disappear, text that must stay)
    (f"Using access key {AWS_ID} for s3://backups", AWS_ID, "for s3://backups"),
    (f"AWS_ACCESS_KEY_ID={AWS_TEMP_ID}", AWS_TEMP_ID, "AWS_ACCESS_KEY_ID="),
    (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "aws_secret_access_key = "),
    (f'export AWS_SECRET_ACCESS_KEY="{AWS_SECRET}"', AWS_SECRET, "export AWS_SECRET_ACCESS_KEY="),
    (
        '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n'
        + body(64)
        + "\\n"
        + body(40)
        + '==\\n-----END PRIVATE KEY-----\\n", "client_email": "etl@proj.iam.gserviceaccount.com"}',
        body(64),
        '"client_email": "etl@proj.iam.gserviceaccount.com"',
    ),
    (f"GET https://maps.googleapis.com/maps/api/geocode?key={GCP_API_KEY}", GCP_API_KEY, "geocode"),
    (
        "DefaultEndpointsProtocol=https;AccountName=backups;"
        f"AccountKey={AZURE_KEY};EndpointSuffix=core.windows.net",
        AZURE_KEY,
        "AccountName=backups;",
    ),
    *[(f"git clone https://x:{t}@github.com/o/r", t, "@github.com/o/r") for t in GH_TOKEN.values()],
    *[(f"token {t} expires soon", t, "expires soon") for t in GH_TOKEN.values()],
    (f"GH_PAT {GH_PAT}", GH_PAT, "GH_PAT "),
    (f"gitlab auth with {GL_TOKEN} ok", GL_TOKEN, " ok"),
    (f"slack client {SLACK_BOT}", SLACK_BOT, "slack client"),
    (f"slack user {SLACK_USER}", SLACK_USER, "slack user"),
    (
        f"POST https://hooks.slack.com/services/{SLACK_HOOK} 200",
        SLACK_HOOK,
        "https://hooks.slack.com/services/",
    ),
    ("Authorization: Bearer x", "Bearer x", "Authorization: Bearer "),
    (
        f"curl -H 'Authorization: Bearer {JWT}' https://api.example.com/v1/jobs",
        JWT,
        "https://api.example.com/v1/jobs",
    ),
    ("> authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy", "authorization: Basic "),
    (f"session {JWT} accepted", JWT, " accepted"),
    (
        "Cloning https://deploy:pa55w0rd-x@git.example.com/repo.git",
        "pa55w0rd-x",
        "https://deploy:",
    ),
    ("mysql://root:Secr3t!@localhost:3306/app", "Secr3t!", "@localhost:3306/app"),
    ("redis://:hunter2hunter2@cache.internal:6379/0", "hunter2hunter2", "@cache.internal:6379/0"),
    (
        f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----",
        PEM_BODY,
        "",
    ),
    (
        f"key:\n-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\n"
        "-----END OPENSSH PRIVATE KEY-----\n",
        "OPENSSH PRIVATE KEY",
        "key:\n",
    ),
    (
        f"-----BEGIN ENCRYPTED PRIVATE KEY-----\r\n{PEM_BODY}\r\n"
        "-----END ENCRYPTED PRIVATE KEY-----",
        PEM_BODY.splitlines()[3],
        "",
    ),
    ("connecting with password=hunter2 to db", "hunter2", " to db"),
    ("PGPASSWORD='correct horse battery' pg_dump app", "correct horse", " pg_dump app"),
    ('{"user": "etl", "password": "s3cr3t value"}', "s3cr3t", '{"user": "etl", "password": "'),
    ("client_secret: 9f8e7d6c5b4a", "9f8e7d6c5b4a", "client_secret: "),
    ("GITHUB_TOKEN=abc123def456 make release", "abc123def456", " make release"),
    ("https://api.example.com/x?api_key=k-12345&page=2", "k-12345", "&page=2"),
    ("SECRET=topsecretvalue", "topsecretvalue", "SECRET="),
    (f"charging with {STRIPE}", STRIPE, "charging with"),
]


@pytest.mark.parametrize("line, secret, kept", SECRETS, ids=range(len(SECRETS)))
def test_each_secret_format_is_redacted(line: str, secret: str, kept: str) -> None:
    cleaned, count = redact(line)
    assert secret not in cleaned
    assert REDACTED in cleaned
    assert kept in cleaned
    assert count >= 1


ORDINARY = [
    "2026-03-02T12:00:00.123Z INFO job started pid=4242",
    "Mar  2 02:30:01 host CRON[1234]: (root) CMD (/usr/local/bin/backup.sh)",
    "run id 0b8e4a36-8f2e-4c1f-9a64-1f9d2f0e6b7a finished in 12.5s",
    "HEAD is now at 3f786850e387550fdab836ed7e6dc881de23001b Fix backup rotation",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "config blob " + base64.b64encode(b"config loaded from /etc/app.conf, 12 entries").decode(),
    "payload " + base64.b64encode(b'{"job": "nightly", "items": 42}').decode(),
    "GET https://example.com:8443/api/v1/items?page=2&sort=asc 200 12ms",
    "git fetch ssh://git@github.com:22/org/repo.git",
    "git@github.com:org/repo.git",
    "password reset email sent to bob@example.com",
    "Password: ",
    "token_count=1532 max_tokens=4096 tokens: 12",
    "PWD=/home/bob OLDPWD=/home",
    "password_reset=true secret_santa_enabled",
    "Authorization required for /admin",
    "the Bearer of bad news",
    "secret rotation scheduled for 2026-04-01",
    "Using key file /etc/ssl/private/server.key",
    "public_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx3 backup@host",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQg\n-----END PUBLIC KEY-----",
    "http://127.0.0.1:8000/ping/5f1e2d3c-1111-4222-8333-944455556666/start?rid=0b8e4a36-8f2e"
    "-4c1f-9a64-1f9d2f0e6b7a",
    "GitHub tokens start with ghp_ and AWS key ids with AKIA",
    "xoxo from the team",
    "posted to hooks.slack.com",
    "time=12:30:45 status=ok duration=3.2s",
    "received sig=SIGTERM, shutting down",
    "SELECT id, name FROM users WHERE id = 42",
    "rsync: sent 1,234 bytes  received 56 bytes  total size 9,876",
    "docker pull registry.example.com:5000/app:1.2.3",
    "Connecting to db.internal:5432 as user app",
    "aws s3 cp s3://bucket/backup-2026-03-02.tar.gz .",
    "password=$DB_PASSWORD password=${DB_PASSWORD} token=*** secret=<redacted> token: null",
    "mailto:ops@example.com",
    "https://user@example.com/path",
    "eyJhbGciOiJIUzI1NiJ9 is a JWT header on its own",
    "tokiflow run: /etc/passwd: cannot execute: permission denied",
    "cp: cannot stat '/srv/app/secret.key: x': No such file or directory",
]


@pytest.mark.parametrize("line", ORDINARY, ids=range(len(ORDINARY)))
def test_ordinary_log_lines_are_left_alone(line: str) -> None:
    assert redact(line) == (line, 0)


def test_the_count_is_the_number_of_secrets_replaced() -> None:
    text = f"a={AWS_ID}\nb {GH_TOKEN['ghp_']}\npassword=hunter2\n"
    cleaned, count = redact(text)
    assert count == 3
    assert cleaned == f"a={REDACTED}\nb {REDACTED}\npassword={REDACTED}\n"


def test_a_secret_caught_by_two_rules_is_replaced_once() -> None:
    cleaned, count = redact(f"Authorization: Bearer {JWT}")
    assert (cleaned, count) == (f"Authorization: Bearer {REDACTED}", 1)


def test_a_private_key_whose_start_was_cut_off_is_still_redacted() -> None:
    tail = f"{PEM_BODY}\n-----END PRIVATE KEY-----\ndone\n"
    cleaned, count = redact("backup finished\n" + tail)
    assert count == 1
    assert cleaned == f"backup finished\n{REDACTED}\ndone\n"


def test_a_json_private_key_whose_start_was_cut_off_is_still_redacted() -> None:
    line = body(64) + "\\n" + body(30) + '==\\n-----END PRIVATE KEY-----\\n", "client_id": "42"'
    cleaned, count = redact(line)
    assert count == 1
    assert cleaned == REDACTED + '\\n", "client_id": "42"'


def test_a_private_key_whose_end_was_cut_off_is_redacted_to_the_end() -> None:
    cleaned, _ = redact(f"start\n-----BEGIN EC PRIVATE KEY-----\n{PEM_BODY[:100]}")
    assert cleaned == f"start\n{REDACTED}"


def test_bytes_that_are_not_utf8_pass_through_unchanged() -> None:
    data = b"\x00\xff\xfe binary \xc3\xa9t\xc3\xa9 password=hunter2 \x80\x81"
    cleaned, count = redact_bytes(data)
    assert count == 1
    assert cleaned == b"\x00\xff\xfe binary \xc3\xa9t\xc3\xa9 password=[REDACTED] \x80\x81"
    assert redact_bytes(b"\xff\x00 nothing here") == (b"\xff\x00 nothing here", 0)


def test_extra_patterns_replace_their_match_or_their_secret_group() -> None:
    text = "customer 4111-1111 order ACME-998877"
    cleaned, count = redact(text, [r"ACME-\d+", r"customer (?P<secret>[\d-]+)"])
    assert (cleaned, count) == (f"customer {REDACTED} order {REDACTED}", 2)


@pytest.mark.parametrize(
    "pattern, message",
    [("(unclosed", "missing )"), ("x*", "matches empty text"), ("", "empty")],
)
def test_an_invalid_extra_pattern_is_refused_with_a_clear_message(
    pattern: str, message: str
) -> None:
    with pytest.raises(ValueError, match="invalid redaction pattern") as err:
        redact("text", [pattern])
    assert message in str(err.value)
    with pytest.raises(ValueError):
        check_patterns(["ok", pattern])
