#!/usr/bin/env python3
"""Writes LINE webhook bodies for the ingest benchmark, each signed the way
LINE signs them (base64 HMAC-SHA256 of the raw body under the channel
secret), one per line as "<signature> <body>", for webhook.lua (wrk) and
ratebench.c. Each body carries one text message event with its own
webhookEventId; the senders are spread over many user ids, so the records
spread over line.webhook's partitions as real traffic does.

usage: gen_bodies.py SECRET COUNT OUT [USERS]
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BOT_USER = "U8e742f61d673b39c7fff3cecb7536ef0"


def ulid_like(ms, n):
    """26 Crockford characters like LINE's webhookEventId: time, then a
    counter and random bits, so every id in a run is distinct."""
    value = (ms << 80) | (n << 40) | int.from_bytes(os.urandom(5), "big")
    out = []
    for _ in range(26):
        out.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    secret = sys.argv[1].encode()
    count = int(sys.argv[2])
    out_path = sys.argv[3]
    users = int(sys.argv[4]) if len(sys.argv) == 5 else 1000
    now_ms = int(time.time() * 1000)
    user_ids = ["U" + hashlib.md5(b"bench-user-%d" % u).hexdigest() for u in range(users)]
    with open(out_path, "w", encoding="utf-8") as out:
        for i in range(count):
            event = {
                "type": "message",
                "message": {
                    "type": "text",
                    "id": str(500000000000000000 + i),
                    "quoteToken": "q" + hashlib.md5(b"q%d" % i).hexdigest()[:20],
                    "text": "bench message %d \u3053\u3093\u306b\u3061\u306f" % i,
                },
                "webhookEventId": ulid_like(now_ms, i),
                "deliveryContext": {"isRedelivery": False},
                "timestamp": now_ms + i,
                "source": {"type": "user", "userId": user_ids[i % users]},
                "replyToken": hashlib.md5(b"rt%d" % i).hexdigest(),
                "mode": "active",
            }
            body = json.dumps(
                {"destination": BOT_USER, "events": [event]},
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode("utf-8")
            mac = hmac.new(secret, body, hashlib.sha256).digest()
            out.write(base64.b64encode(mac).decode() + " " + body.decode("utf-8") + "\n")


if __name__ == "__main__":
    main()
