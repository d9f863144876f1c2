"""An image agent run announces its end to the run's webhook_url, signed and verifiable."""

from __future__ import annotations

import io

from PIL import Image
from standardwebhooks.webhooks import Webhook

from tests.conftest import Server
from tests.webhooks.conftest import Receiver


def test_agent_run_delivers_a_signed_completed_webhook(server: Server) -> None:
    receiver = Receiver()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 80, 40)).save(buf, "PNG")
    try:
        with server.sibling(own_database=True, webhook_allow_private=True) as hooks:
            t = hooks.tenant(credits=1000)
            secret = t.client.get("/v1/webhooks/default/secret").json()["data"]["secret"]
            r = t.client.post(
                "/v2/image/agent",
                data={
                    "instructions": "make it black and white",
                    "webhook_url": receiver.url,
                    "max_steps": "4",
                },
                files=[("images", ("a.png", buf.getvalue(), "image/png"))],
            )
            assert r.status_code == 202, r.text
            job_id = r.json()["data"]["job_id"]
            got = receiver.wait_for(1, timeout=60)[0]
            Webhook(secret).verify(got.body, got.headers)
            body = got.json()
            assert body["type"] == "job.completed"
            assert body["code"] == 0 and body["data"]["id"] == job_id
            assert body["data"]["surface"] == "image_agent"
            assert body["data"]["outputs"][0]["width"] == 2048
    finally:
        receiver.close()
