"""The independent side of the Standard Webhooks tests: the reference implementation
(`standardwebhooks` on PyPI) signs and verifies what FluxoLab verifies and signs.

    python standard_webhooks.py sign SECRET MSG_ID TIMESTAMP < body
        prints the webhook-signature header value
    python standard_webhooks.py verify SECRET < {"headers": {...}, "body": "..."}
        prints "ok" when the message verifies, else the library's error (exit 1)
"""

import json
import sys
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    command, secret = sys.argv[1], sys.argv[2]
    webhook = Webhook(secret)
    if command == "sign":
        msg_id, timestamp = sys.argv[3], int(sys.argv[4])
        body = sys.stdin.buffer.read().decode()
        sent_at = datetime.fromtimestamp(timestamp, tz=timezone.utc)
        print(webhook.sign(msg_id=msg_id, timestamp=sent_at, data=body))
        return 0
    if command == "verify":
        message = json.load(sys.stdin)
        try:
            webhook.verify(message["body"], message["headers"], json_parse=False)
        except WebhookVerificationError as error:
            print(f"refused: {error}")
            return 1
        print("ok")
        return 0
    print(f"unknown command {command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
