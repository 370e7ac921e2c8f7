"""Matrix: PUT an m.room.message with a transaction id from the idempotency key."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.channels.conftest import Serve
from tokiflow.channels import base
from tokiflow.channels.base import Alert, ChannelConfigError, ChannelError, SendContext
from tokiflow.channels.matrix import MatrixChannel
from tokiflow.clock import FakeClock
from tokiflow.engine.channel_setup import validate

ROOM = "!ZtAVLKxqTxmNMoGQwb:matrix.example"
EVENT = {"event_id": "$YUwRidLecu:matrix.example"}


async def test_it_puts_a_message_event_with_plain_and_html_bodies(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    matrix = await serve(body=EVENT)
    config = validate(
        "matrix", "m", {"homeserver": matrix.url + "/", "access_token": "syt_abc", "room_id": ROOM}
    )
    assert await MatrixChannel(config, ctx).send(open_alert) == "HTTP 200"
    seen = matrix.only
    assert seen.method == "PUT"
    assert seen.path == f"/_matrix/client/v3/rooms/{ROOM}/send/m.room.message/tokiflow-7-open-1"
    assert seen.headers["Authorization"] == "Bearer syt_abc"
    assert seen.json() == {
        "msgtype": "m.text",
        "body": open_alert.text(),
        "format": "org.matrix.custom.html",
        "formatted_body": (
            '<p><strong><font color="#c81e1e">[DOWN] backup: the job failed</font></strong></p>'
            "<p>backup: the job exited with status 2.</p>"
            "<ul><li><strong>Reason:</strong> the job exited with status 2</li>"
            "<li><strong>Schedule:</strong> every 1 hour, grace 5 minutes</li>"
            "<li><strong>Last ping:</strong> 2026-03-02 11:59:58 UTC</li>"
            "<li><strong>Last run took:</strong> 2 minutes</li>"
            "<li><strong>Opened:</strong> 2026-03-02 12:00:00 UTC</li></ul>"
            "<p><strong>Last output:</strong></p>"
            "<pre><code>rsync: &lt;error&gt; &amp; warning\nexit 2</code></pre>"
            '<p><a href="https://toki.example/incidents/7">View incident</a> · '
            '<a href="https://toki.example/incidents/7/ack">Acknowledge</a></p>'
        ),
    }


async def test_a_retry_reuses_the_transaction_id_so_the_homeserver_drops_the_repeat(
    serve: Serve, ctx: SendContext, resolved_alert: Alert
) -> None:
    matrix = await serve(body=EVENT)
    channel = MatrixChannel({"homeserver": matrix.url, "access_token": "t", "room_id": ROOM}, ctx)
    await channel.send(resolved_alert)
    await channel.send(resolved_alert)
    paths = {r.path for r in matrix.requests}
    assert paths == {f"/_matrix/client/v3/rooms/{ROOM}/send/m.room.message/tokiflow-7-resolved-1"}
    html = matrix.requests[0].json()["formatted_body"]
    assert html.startswith('<p><strong><font color="#0e7c3a">[RESOLVED] backup is up again')
    assert "Acknowledge" not in html


async def test_each_test_message_gets_a_new_transaction_id(
    serve: Serve, ctx: SendContext, clock: FakeClock
) -> None:
    matrix = await serve(body=EVENT)
    channel = MatrixChannel({"homeserver": matrix.url, "access_token": "t", "room_id": ROOM}, ctx)
    await channel.test()
    await clock.advance(1)
    await channel.send(base.sample_alert("matrix"))
    first, second = (r.path.rsplit("/", 1)[1] for r in matrix.requests)
    start = int(dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)
    assert (first, second) == (f"test-matrix-{start}", f"test-matrix-{start + 1000}")


@pytest.mark.parametrize(
    ("status", "permanent"), [(401, True), (403, True), (429, False), (502, False)]
)
async def test_matrix_errors_are_permanent_or_retried(
    serve: Serve, ctx: SendContext, open_alert: Alert, status: int, permanent: bool
) -> None:
    matrix = await serve(status=status, body={"errcode": "M_FORBIDDEN", "error": "not in room"})
    channel = MatrixChannel({"homeserver": matrix.url, "access_token": "t", "room_id": ROOM}, ctx)
    with pytest.raises(ChannelError) as caught:
        await channel.send(open_alert)
    assert caught.value.permanent is permanent and "M_FORBIDDEN" in str(caught.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"access_token": "t", "room_id": ROOM}, "homeserver: is required"),
        ({"homeserver": "https://m.example", "room_id": ROOM}, "access_token: is required"),
        ({"homeserver": "https://m.example", "access_token": "t"}, "room_id: is required"),
        ({"homeserver": "https://m.example", "access_token": "t", "room_id": "#ops:m.example"},
         "room_id: must be a room id"),
        ({"homeserver": "m.example", "access_token": "t", "room_id": ROOM}, "homeserver: must be"),
    ],
)  # fmt: skip
def test_matrix_configs_are_validated_on_save(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        validate("matrix", "m", config)


def test_a_room_id_without_a_server_name_is_accepted() -> None:
    clean = validate("matrix", "m", {"homeserver": "https://m.example", "access_token": "t",
                                     "room_id": "!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM"})  # fmt: skip
    assert clean["room_id"].startswith("!31hne")
    assert MatrixChannel.masked(clean)["access_token"] == "***"
