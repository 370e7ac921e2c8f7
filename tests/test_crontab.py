"""`tokiflow crontab wrap|unwrap`: the rewriting rules, a corpus of real-world crontabs, and wrapped
lines run the way cron runs them against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import LICENSED_CLI, Server, assert_one_clear_line, licensed_env
from tokiflow import crontab

CORPUS = Path(__file__).resolve().parent / "crontabs"
FILES = sorted(p.name for p in CORPUS.iterdir())
TOKIFLOW = "/opt/tokiflow/bin/tokiflow"
BASE = "http://tokiflow.test:8000"


def tokiflow(
    *args: str, env: dict[str, str] | None = None, licensed: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI; with `licensed` (a data folder), under an ENTERPRISE licence installed
    there, for crontabs of more jobs than the FREE plan's five monitors."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TOKIFLOW_")}
    cmd = [sys.executable, "-m", "tokiflow"]
    if licensed is not None:
        clean.update(licensed_env(licensed))
        cmd = LICENSED_CLI
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def wrap_text(text: str, *, system: bool, taken: set[str] | None = None) -> crontab.WrapPlan:
    counter = iter(range(1, 10_000))
    return crontab.plan_wrap(
        text,
        system=system,
        default_tz="Europe/Paris",
        tokiflow=TOKIFLOW,
        base_url=BASE,
        slug_taken=(taken or set()).__contains__,
        new_uuid=lambda: f"00000000-0000-4000-8000-{next(counter):012d}",
        slugify=lambda name: name.lower().replace(" ", "-"),
    )


def variants(text: str) -> Iterator[tuple[str, str]]:
    yield "as-is", text
    yield "crlf", text.replace("\r\n", "\n").replace("\n", "\r\n")
    yield "no-final-newline", text.rstrip("\r\n")
    yield "trailing-spaces", text.replace("\n", "  \n")


@pytest.mark.parametrize("name", FILES)
def test_wrap_then_unwrap_gives_back_every_corpus_file_byte_for_byte(name: str) -> None:
    raw = (CORPUS / name).read_bytes().decode("utf-8", "surrogateescape")
    for label, text in variants(raw):
        plan = wrap_text(text, system=name.startswith("system-"))
        urls = {job.url for job in plan.jobs}
        back = crontab.plan_unwrap(plan.text, system=name.startswith("system-"), known_urls=urls)
        assert back.text == text, label
        assert len(back.restored) == len(plan.jobs), label
        again = wrap_text(plan.text, system=name.startswith("system-"))
        assert (again.text, again.jobs, again.already) == (plan.text, [], len(plan.jobs)), label


def test_the_schedule_and_user_fields_are_kept_byte_for_byte() -> None:
    text = "25 6\t* * *\troot\ttest -x /usr/sbin/anacron || run-parts /etc/cron.daily\n"
    plan = wrap_text(text, system=True)
    assert plan.text.startswith("25 6\t* * *\troot\t" + TOKIFLOW + " run --url ")
    assert plan.text.endswith(
        " -- /bin/sh -c 'test -x /usr/sbin/anacron || run-parts /etc/cron.daily'\n"
    )


@pytest.mark.parametrize(
    "command, wrapped_tail",
    [
        ("/usr/local/bin/backup.sh --full", "-- /usr/local/bin/backup.sh --full"),
        ("cd /srv && make", "-- /bin/sh -c 'cd /srv && make'"),
        (
            "echo 'it'\\''s' > /tmp/x",
            "-- /bin/sh -c 'echo '\\''it'\\''\\'\\'''\\''s'\\'' > /tmp/x'",
        ),
        ("date +\\%F > /tmp/d", "-- /bin/sh -c 'date +\\%F > /tmp/d'"),
        ("cat > /tmp/x %line one%line two", "-- /bin/sh -c 'cat > /tmp/x' %line one%line two"),
        ("FOO=1 ./job", "-- /bin/sh -c 'FOO=1 ./job'"),
        ("cd /srv", "-- /bin/sh -c 'cd /srv'"),
        ("backup.sh   ", "-- backup.sh   "),
    ],
)
def test_commands_are_wrapped_keeping_cron_and_shell_semantics(
    command: str, wrapped_tail: str
) -> None:
    wrapped = crontab.wrapped_form(command, tokiflow="tokiflow", url="U", shell="/bin/sh")
    assert wrapped == f"tokiflow run --url U {wrapped_tail}"
    found = crontab.unwrapped_form(wrapped)
    assert found is not None and (found.url, found.original) == ("U", command)


def test_the_crontab_shell_runs_commands_that_need_a_shell() -> None:
    plan = wrap_text("SHELL=/bin/bash\n0 0 * * * [[ -f /x ]] && echo y\n", system=False)
    assert "-- /bin/bash -c '[[ -f /x ]] && echo y'" in plan.text


@pytest.mark.parametrize(
    "command, stdin",
    [
        ("echo hi", ""),
        ("cat %a%b", "%a%b"),
        ("date +\\%F%input", "%input"),
        ("echo \\\\%rest", "%rest"),
    ],
)
def test_the_first_unescaped_percent_starts_stdin(command: str, stdin: str) -> None:
    head, rest = crontab.split_stdin(command)
    assert (head + rest, rest) == (command, stdin)


@pytest.mark.parametrize(
    "command, name",
    [
        ("cd / && run-parts --report /etc/cron.hourly", "run-parts cron.hourly"),
        (
            "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }",
            "run-parts cron.daily",
        ),
        (
            "[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then "
            "/usr/lib/php/sessionclean; fi",
            "sessionclean",
        ),
        ("/usr/local/bin/backup.sh > /var/log/b.log 2>&1", "backup.sh"),
        ("php /var/www/app/artisan schedule:run >> /dev/null 2>&1", "php artisan schedule:run"),
        ("nice -n 10 timeout 1h pg_dump -Fc app", "pg_dump app"),
        ("PGPASSWORD=hunter2 pg_dump app", "pg_dump app"),
        ("curl -fsS -m 10 https://status.example.com/heartbeat", "curl heartbeat"),
        ("echo 'unbalanced", "echo 'unbalanced"),
    ],
)
def test_monitor_names_say_what_the_job_runs(command: str, name: str) -> None:
    assert crontab.job_name(command) == name


def test_lines_that_cannot_be_monitored_are_left_alone_with_a_note() -> None:
    text = (
        "@reboot /usr/local/bin/agent\n"
        "61 * * * * /bin/true\n"
        "0 0 * * * /bin/true\n"
        "not a cron line at all here\n"
    )
    plan = wrap_text(text, system=False)
    assert [j.index for j in plan.jobs] == [2]
    assert plan.text.splitlines()[0:2] == text.splitlines()[0:2]
    assert plan.text.splitlines()[3] == text.splitlines()[3]
    notes = "\n".join(plan.notes)
    assert "line 1: @reboot left as it is (no schedule to monitor)" in notes
    assert "line 2: left as it is: invalid minute '61'" in notes


def test_cron_tz_and_tz_lines_apply_to_the_jobs_after_them() -> None:
    text = (
        "0 1 * * * a\nTZ=Asia/Tokyo\n0 2 * * * b\nCRON_TZ=America/New_York\n0 3 * * * c\n"
        'CRON_TZ="Europe/London"\n@daily d\n'
    )
    plan = wrap_text(text, system=False)
    assert [(j.name, j.schedule, j.tz) for j in plan.jobs] == [
        ("a", "0 1 * * *", "Europe/Paris"),
        ("b", "0 2 * * *", "Asia/Tokyo"),
        ("c", "0 3 * * *", "America/New_York"),
        ("d", "0 0 * * *", "Europe/London"),
    ]


def test_slugs_are_unique_within_the_crontab_and_the_organisation() -> None:
    plan = wrap_text(
        "0 1 * * * backup.sh\n0 2 * * * backup.sh\n", system=False, taken={"backup.sh"}
    )
    assert [(j.name, j.slug) for j in plan.jobs] == [
        ("backup.sh", "backup.sh-2"),
        ("backup.sh (2)", "backup.sh-(2)"),
    ]


def test_a_line_not_written_by_wrap_is_left_alone_by_unwrap() -> None:
    text = "0 1 * * * /usr/bin/tokiflow run --url http://x/ping/mine -- backup.sh\n"
    plan = crontab.plan_unwrap(text, system=False, known_urls=set())
    assert plan.text == text and plan.restored == []
    assert "not set up by 'tokiflow crontab wrap'" in plan.notes[0]


# The command line, on copies of the corpus files.


def _wrap_args(path: Path, data: Path, *extra: str) -> list[str]:
    system = ["--system"] if path.name.startswith("system-") else []
    return ["crontab", "wrap", "--file", str(path), *system, "--data-dir", str(data),
            "--server-url", BASE, "--tz", "Europe/Paris", *extra]  # fmt: skip


def _monitors(data: Path) -> list[dict[str, object]]:
    if not (data / "tokiflow.db").exists():
        return []
    listed = tokiflow("monitors", "list", "--json", "--data-dir", str(data))
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


@pytest.mark.parametrize("name", FILES)
def test_the_cli_wraps_each_corpus_file_once_and_unwraps_it_byte_for_byte(
    name: str, tmp_path: Path
) -> None:
    original = (CORPUS / name).read_bytes()
    target = tmp_path / name
    target.write_bytes(original)
    data = tmp_path / "data"
    first = tokiflow(*_wrap_args(target, data, "--yes"), licensed=data)
    assert first.returncode == 0, first.stderr
    wrapped = target.read_bytes()
    created = _monitors(data)
    if original.strip() == b"":
        assert "nothing to wrap" in first.stdout and wrapped == original and created == []
        return
    assert wrapped != original and len(created) > 0
    second = tokiflow(*_wrap_args(target, data, "--yes"), licensed=data)
    assert second.returncode == 0, second.stderr
    assert f"({len(created)} already wrapped)" in second.stdout
    assert target.read_bytes() == wrapped
    assert len(_monitors(data)) == len(created)
    system = ["--system"] if name.startswith("system-") else []
    back = tokiflow("crontab", "unwrap", "--file", str(target), *system, "--yes",
                    "--data-dir", str(data))  # fmt: skip
    assert back.returncode == 0, back.stderr
    assert target.read_bytes() == original
    backups = sorted((data / "crontab-backups").glob("*.crontab"))
    assert [b.read_bytes() for b in backups] == [original, wrapped]


def test_the_created_monitors_copy_each_jobs_schedule_and_time_zone(tmp_path: Path) -> None:
    target = tmp_path / "crontab"
    target.write_bytes((CORPUS / "user-app").read_bytes())
    data = tmp_path / "data"
    result = tokiflow(*_wrap_args(target, data, "--yes"), licensed=data)
    assert result.returncode == 0, result.stderr
    assert "note: line 18: @reboot left as it is" in result.stdout
    found = {(m["name"], m["schedule"], m["tz"], m["schedule_kind"]) for m in _monitors(data)}
    assert found == {
        ("queue-worker", "*/5 * * * *", "Europe/Paris", "cron"),
        ("backup.sh", "30 2 * * *", "Europe/London", "cron"),
        ("sync-orders", "0 */4 * * MON-FRI", "Europe/London", "cron"),
        ("quarterly.py finance@example.com", "15 9 1,15 JAN,APR,JUL,OCT *", "America/New_York",
         "cron"),
        ("php artisan schedule:run", "0 * * * *", "America/New_York", "cron"),
        ("mysqldump app", "5 0 * * *", "America/New_York", "cron"),
        ("mail Daily reminder", "0 6 * * 1-5", "America/New_York", "cron"),
        ("curl heartbeat", "*/10 8-18 * * *", "America/New_York", "cron"),
        ("find app", "0 0 * * *", "America/New_York", "cron"),
    }  # fmt: skip
    text = target.read_text()
    assert all(f" run --url {BASE}/ping/{m['uuid']} -- " in text for m in _monitors(data))


def test_dry_run_shows_the_diff_and_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "crontab"
    target.write_bytes((CORPUS / "user-app").read_bytes())
    data = tmp_path / "data"
    result = tokiflow(*_wrap_args(target, data, "--dry-run"))
    assert result.returncode == 0, result.stderr
    assert "-30 2 * * * /usr/local/bin/backup.sh --full" in result.stdout
    assert "+30 2 * * * " in result.stdout and "dry run: 9 job(s) would be wrapped" in result.stdout
    assert target.read_bytes() == (CORPUS / "user-app").read_bytes()
    assert not data.exists()


def test_without_a_terminal_or_yes_nothing_is_installed(tmp_path: Path) -> None:
    target = tmp_path / "crontab"
    target.write_bytes((CORPUS / "user-app").read_bytes())
    data = tmp_path / "data"
    result = tokiflow(*_wrap_args(target, data))
    assert_one_clear_line(result, "not installing without confirmation: run again with --yes")
    assert target.read_bytes() == (CORPUS / "user-app").read_bytes()
    assert _monitors(data) == []


def test_an_anacrontab_is_refused_with_a_reason(tmp_path: Path) -> None:
    target = tmp_path / "anacrontab"
    target.write_text("1\t5\tcron.daily\trun-parts --report /etc/cron.daily\n")
    result = tokiflow("crontab", "wrap", "--file", str(target), "--data-dir", str(tmp_path / "d"))
    assert_one_clear_line(result, "anacrontab has its own format")


FAKE_CRONTAB = """#!{python}
import os, sys
store = os.environ["FAKE_CRONTAB_DIR"]
args = sys.argv[1:]
user = "me"
if args[:1] == ["-u"]:
    user, args = args[1], args[2:]
path = os.path.join(store, user)
if args == ["-l"]:
    if not os.path.exists(path):
        sys.stderr.write(f"no crontab for {{user}}\\n")
        sys.exit(1)
    sys.stdout.buffer.write(open(path, "rb").read())
elif args == ["-"]:
    open(path, "wb").write(sys.stdin.buffer.read())
else:
    sys.exit(2)
"""


def test_a_users_crontab_is_read_and_installed_with_the_crontab_command(tmp_path: Path) -> None:
    bin_dir, store = tmp_path / "bin", tmp_path / "crontabs"
    bin_dir.mkdir()
    store.mkdir()
    fake = bin_dir / "crontab"
    fake.write_text(FAKE_CRONTAB.format(python=sys.executable))
    fake.chmod(0o755)
    original = b"MAILTO=me@example.com\n15 3 * * * /usr/local/bin/backup.sh\n"
    (store / "deploy").write_bytes(original)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_CRONTAB_DIR": str(store)}
    data = str(tmp_path / "data")
    wrapped = tokiflow("crontab", "wrap", "--user", "deploy", "--yes", "--data-dir", data,
                       "--tz", "UTC", env=env)  # fmt: skip
    assert wrapped.returncode == 0, wrapped.stderr
    assert b" run --url http://127.0.0.1:8000/ping/" in (store / "deploy").read_bytes()
    nobody = tokiflow("crontab", "wrap", "--yes", "--data-dir", data, env=env)
    assert (nobody.returncode, nobody.stdout.strip()) == (0, "nothing to wrap in your crontab")
    back = tokiflow("crontab", "unwrap", "--user", "deploy", "--yes", "--data-dir", data, env=env)
    assert back.returncode == 0, back.stderr
    assert (store / "deploy").read_bytes() == original


# Wrapped lines run the way cron runs them, against a real server.


def cron_split(command: str) -> tuple[str, bytes]:
    """What cron (vixie/cronie) hands to the shell and to stdin for a command field."""
    out, stdin, escaped, in_input = [], [], False, False
    for ch in command:
        if not in_input:
            if escaped:
                if ch != "%":
                    out.append("\\")
                out.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "%":
                in_input = True
            else:
                out.append(ch)
        else:
            if escaped:
                if ch != "%":
                    stdin.append("\\")
                stdin.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            else:
                stdin.append("\n" if ch == "%" else ch)
    if escaped:
        (stdin if in_input else out).append("\\")
    return "".join(out), "".join(stdin).encode()


def cron_run(command: str, cwd: Path) -> int:
    shell_command, stdin = cron_split(command)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKIFLOW_")}
    done = subprocess.run(
        ["/bin/sh", "-c", shell_command], input=stdin, cwd=cwd, env=env, capture_output=True,
        timeout=60,
    )  # fmt: skip
    return done.returncode


JOBS = [
    'echo "a  b" > out1',
    "printf '[\\%s]' x y > out2",
    "cat > out3 %line one%line two%",
    "echo 'it'\\''s' | tr a-z A-Z > out4 ; exit 3",
    "touch out5",
    "sh -c 'echo $0' positional > out6",
]


def test_wrapped_lines_do_what_the_original_lines_did_and_ping_the_server(
    tmp_path: Path, server_factory: type[Server]
) -> None:
    data = tmp_path / "data"
    server = server_factory(data)
    server.wait_ready()
    tab = tmp_path / "crontab"
    # A yearly schedule: no deadline passes while the test runs (with every minute, one could
    # pass between the pings and the check, and the monitors would be late).
    tab.write_text("".join(f"0 0 1 1 * {job}\n" for job in JOBS))
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir()
    after.mkdir()
    statuses_before = [cron_run(job, before) for job in JOBS]
    wrapped = tokiflow("crontab", "wrap", "--file", str(tab), "--yes", "--data-dir", str(data),
                       "--server-url", server.url, "--tz", "UTC", licensed=data)  # fmt: skip
    assert wrapped.returncode == 0, wrapped.stderr
    lines = crontab.parse_jobs(crontab.split_lines(tab.read_text()), system=False)
    statuses_after = [cron_run(job.command, after) for job in lines]
    assert statuses_after == statuses_before == [0, 0, 0, 3, 0, 0]
    for n in range(1, 7):
        assert (after / f"out{n}").read_bytes() == (before / f"out{n}").read_bytes(), n
    assert (after / "out3").read_text() == "line one\nline two\n"
    by_status = {m["name"]: m["status"] for m in _monitors(data)}
    assert sorted(by_status.values()) == ["down"] + ["up"] * 5
    server.stop()
