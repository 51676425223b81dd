#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets under tests/fuzz/corpus/<target>/
(for webhook_parse, whose seeds are hand-written JSON, only the large bodies). Run it again
after changing a seed here; the files it writes are committed, so the fuzz
run itself needs no Python. Seeds are valid inputs written from LINE's
documented formats and our own protobuf schemas, plus a few near misses.
Standard library only (no protobuf package: the wire format is simple)."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# The keys the targets hold (must match the fuzz_*.c files).
JWT_KEY = b"kizuna-fuzz-jwt-key-0123456789abcdef"
LINK_KEY = b"kizuna-fuzz-link-key-0123456789\0"
NOW = 1767225600  # 2026-01-01T00:00:00Z


# --- protobuf wire format -------------------------------------------------
def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(num, v):
    return varint(num << 3 | 0) + varint(v)


def f_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(num << 3 | 2) + varint(len(b)) + b


def envelope(tenant="tenant-a", channel="1234567890"):
    return (f_bytes(1, "7f3c2a9e-0d4b-4c1e-9a57-3b2f1e0c9d8a") + f_bytes(2, tenant) +
            f_bytes(3, channel) + f_varint(4, 1767225660000))


def send_request(kind, **kw):
    b = f_bytes(1, envelope()) + f_bytes(2, kw.get("request_id", "5b9f5f0e-8f0c-4b8e-9b1d-2d6f1c3a4e5f"))
    b += f_varint(3, kind)
    if "reply_token" in kw:
        b += f_bytes(10, kw["reply_token"]) + f_varint(11, kw.get("issued_at", 1767225650000))
        if kw.get("fallback"):
            b += f_varint(12, 1)
    if "to" in kw:
        b += f_bytes(20, kw["to"])
    for r in kw.get("recipients", []):
        b += f_bytes(21, r)
    for m in kw.get("messages", []):
        b += f_bytes(30, json.dumps(m, separators=(",", ":")))
    if kw.get("silent"):
        b += f_varint(31, 1)
    for u in kw.get("units", []):
        b += f_bytes(32, u)
    for num, key in ((40, "recipient"), (41, "filter"), (42, "limit")):
        if key in kw:
            b += f_bytes(num, json.dumps(kw[key], separators=(",", ":")))
    if "rich_menu_id" in kw:
        b += f_bytes(50, kw["rich_menu_id"])
    return b


def channel_config(channel="1234567890", tenant="tenant-a", token=b"accesstoken-abc", version=1,
                   deleted=False, tz="Asia/Tokyo", quota=1000):
    b = f_bytes(1, envelope(tenant, channel)) + f_bytes(2, channel) + f_bytes(3, tenant)
    b += f_bytes(4, "Shop") + f_bytes(5, "U" + "0123456789abcdef" * 2) + f_bytes(6, tz)
    b += f_varint(7, quota) + f_bytes(10, token) + f_bytes(11, "a1b2c3d4")
    if deleted:
        b += f_varint(20, 1)
    b += f_varint(21, version) + f_varint(22, 1767225600000)
    return b


# --- writing ----------------------------------------------------------------
def write(target, seeds):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_part(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def jwt(header, payload, key=JWT_KEY):
    text = jwt_part(header) + "." + jwt_part(payload)
    sig = hmac.new(key, text.encode(), hashlib.sha256).digest()
    return text + "." + b64url(sig)


HS = {"alg": "HS256", "typ": "JWT"}
CLAIMS = {"tenant": "tenant-a", "sub": "alice", "role": "operator", "iat": NOW - 60, "exp": NOW + 3600}


def seeds_jwt():
    return {
        "valid": b"\0" + jwt(HS, CLAIMS).encode(),
        "valid-header": b"\2" + jwt(HS, CLAIMS).encode(),
        "resign-claims": b"\1" + (jwt_part(HS) + "." + jwt_part(CLAIMS)).encode(),
        "resign-expired": b"\1" + (jwt_part(HS) + "." + jwt_part(dict(CLAIMS, exp=NOW - 1))).encode(),
        "resign-role": b"\1" + (jwt_part({"alg": "HS256"}) + "." +
                                jwt_part(dict(CLAIMS, role="root", aud="kizuna", nbf=NOW))).encode(),
        "alg-none": b"\0" + (jwt_part({"alg": "none"}) + "." + jwt_part(CLAIMS) + ".").encode(),
        "rs256": b"\0" + jwt({"alg": "RS256", "typ": "JWT"}, CLAIMS).encode(),
        "wrong-key": b"\0" + jwt(HS, CLAIMS, b"another-key-another-key-another-k").encode(),
        "bearer-spaces": b"\2" + ("  " + jwt(HS, CLAIMS)).encode(),
    }


def seeds_base64():
    return {
        "empty": b"",
        "pad2": b"AA==",
        "pad1": b"AAE=",
        "url": b"_-8",
        "text": base64.b64encode(b"hello world"),
        "sig": base64.b64encode(hashlib.sha256(b"x").digest()),
        "hexkey": hashlib.sha256(b"k").hexdigest().encode(),
        "hexkey-upper": hashlib.sha256(b"k").hexdigest().upper().encode(),
        "noncanonical": b"AB==",
    }


def link_payload(tenant="tenant-a", channel="1234567890", link="lnk_01", user="U" + "ab" * 16,
                 url="https://example.com/sale?utm=line", exp=NOW + 86400, version=1):
    p = bytes([version]) + struct.pack(">q", exp)
    for s in (tenant, channel, link, user, url):
        s = s.encode()
        p += struct.pack(">H", len(s)) + s
    return p


def link_token(payload):
    mac = hmac.new(LINK_KEY, payload, hashlib.sha256).digest()
    return (b64url(payload) + "." + b64url(mac)).encode()


def seeds_link_token():
    return {
        "token": b"\0" + link_token(link_payload()),
        "token-anonymous": b"\0" + link_token(link_payload(user="")),
        "payload": b"\1" + link_payload(),
        "payload-http": b"\1" + link_payload(url="http://shop.example/a"),
        "payload-expired": b"\1" + link_payload(exp=NOW - 5),
        "payload-javascript": b"\1" + link_payload(url="javascript:alert(1)"),
        "payload-trailing": b"\1" + link_payload() + b"x",
        "bad-mac": b"\0" + link_token(link_payload())[:-2] + b"AA",
    }


def seeds_httpd():
    crlf = "\r\n"
    big = "x" * 5000
    chunks = "".join("%x\r\n%s\r\n" % (1000, "y" * 1000) for _ in range(5)) + "0\r\n\r\n"
    return {
        "get": "GET /v1/x?a=1&b=%20 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "post": "POST /webhook/1234567890 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                "Content-Length: 13\r\n\r\n{\"events\":[]}",
        "chunked": "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
        "declared-413": "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + big,
        "chunked-413": "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks,
        "defer": "POST /defer HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
        "later": "PUT /later HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
        "error": "DELETE /error/\xff\"\\ HTTP/1.1\r\nHost: a\r\n\r\n",
        "pipelined": "GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\n"
                     "Content-Length: 1\r\n\r\nzGET /defer HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "expect": "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
        "http10": "GET /healthz HTTP/1.0\r\n\r\n",
        "metrics": "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
        "bad-method": "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n",
        "both-lengths": "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "negative-length": "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "huge-length": "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "short-body": "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc",
    }


def seeds_registry_input():
    full = {"channel_id": "1234567890", "name": "Shop ショップ",
            "channel_secret": "0123456789abcdef0123456789abcdef",
            "access_token": "eyJhbGciOiJIUzI1NiJ9.long-lived+token/abc=",
            "bot_user_id": "U" + "0123456789abcdef" * 2, "timezone": "Asia/Tokyo",
            "monthly_quota": 1000}
    minimal = {k: v for k, v in full.items() if k not in ("timezone", "monthly_quota")}
    j = lambda o: json.dumps(o, ensure_ascii=False)
    return {
        "create": b"\0" + j(full).encode(),
        "create-zoneinfo": b"\2" + j(dict(full, timezone="America/Sao_Paulo")).encode(),
        "create-minimal": b"\0" + j(minimal).encode(),
        "patch": b"\1" + j({"name": "New name", "monthly_quota": 0}).encode(),
        "patch-token": b"\3" + j({"access_token": "abc", "timezone": "Etc/GMT+9"}).encode(),
        "patch-immutable": b"\1" + j({"channel_id": "1"}).encode(),
        "duplicate": b"\0" + b'{"name":"a","name":"b"}',
        "unknown": b"\0" + b'{"nope":1}',
        "traversal": b"\2" + j(dict(full, timezone="../../etc/passwd")).encode(),
        "real": b"\0" + j(dict(full, monthly_quota=1.5)).encode(),
    }


def seeds_limits():
    return {
        "number": '{"push":100}',
        "object": '{"push":{"limit":100,"period_s":1,"burst":10}}',
        "reset": '{"reply":null,"multicast":200}',
        "hourly": '{"broadcast":{"limit":60,"period_s":3600},"narrowcast":{"limit":60,"period_s":3600}}',
        "all": json.dumps({c: 10 for c in (
            "reply", "push", "multicast", "broadcast", "narrowcast", "narrowcast_progress", "quota",
            "quota_consumption", "profile", "richmenu_link", "richmenu_unlink", "richmenu_bulk_link",
            "richmenu_bulk_unlink")}),
        "unlimited": '{"push":0}',
        "bad-class": '{"pull":1}',
        "bad-member": '{"push":{"limit":1,"rate":2}}',
        "negative": '{"push":{"limit":-1}}',
        "huge": '{"push":{"limit":9223372036854775807,"period_s":9223372036854775807,"burst":1}}',
        "array": '[1]',
    }


MSG = {"type": "text", "text": "Hello, world"}
STICKER = {"type": "sticker", "packageId": "446", "stickerId": "1988"}
USER = "U" + "4af4980629" + "0" * 22


def seeds_line_request():
    return {
        "reply": send_request(1, reply_token="nHuyWiB7yP5Zw52FIkcQobQuGDXCTA", messages=[MSG, STICKER]),
        "reply-old": send_request(1, reply_token="nHuyWiB7yP5Zw52FIkcQobQuGDXCTA", issued_at=1,
                                  fallback=True, to=USER, messages=[MSG]),
        "push": send_request(2, to=USER, messages=[MSG], silent=True, units=["promotion_a"]),
        "multicast": send_request(3, recipients=[USER, "U" + "1" * 32], messages=[MSG]),
        "broadcast": send_request(4, messages=[MSG, MSG, MSG, MSG, MSG]),
        "narrowcast": send_request(5, messages=[MSG],
                                   recipient={"type": "audience", "audienceGroupId": 5614991017776},
                                   filter={"demographic": {"type": "gender", "oneOf": ["male"]}},
                                   limit={"max": 100, "upToRemainingQuota": True}),
        "profile": send_request(6, to=USER),
        "richmenu-link": send_request(7, to=USER, rich_menu_id="richmenu-8dfdfc571eca39c0ffcd1f799519c5b5"),
        "richmenu-unlink": send_request(8, to=USER),
        "richmenu-bulk-link": send_request(9, recipients=[USER], rich_menu_id="richmenu-88c05ef6921ae53f8b58a25f3a65faf7"),
        "richmenu-bulk-unlink": send_request(10, recipients=[USER, USER]),
        "no-kind": send_request(0, to=USER, messages=[MSG]),
        "bad-json": send_request(2, to=USER, messages=[MSG]) + f_bytes(30, '{"type":'),
    }


def seeds_channel_config():
    def rec(flags, key, value):
        key = key.encode()
        return bytes([flags, len(key)]) + key + value

    return {
        "sealed": rec(1, "1234567890", channel_config()),
        "sealed-twice-tombstone": rec(7, "1234567890", channel_config(version=7)),
        "unsealed": rec(0, "1234567890", channel_config(token=b"\x01" + b"\0" * 40)),
        "deleted": rec(4, "1234567890", channel_config(deleted=True, version=9)),
        "key-only-id": rec(1, "555", channel_config(channel="")),
        "tombstone": rec(4, "1234567890", b""),
        "no-tenant": rec(1, "1", channel_config(tenant="")),
        "long-zone": rec(1, "1", channel_config(tz="Z" * 80)),
    }


def line_answer(kind, status, body=b"", request_id="", accepted="", retry_after="", transport=0):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    head = bytes([kind, transport]) + struct.pack(">H", status)
    return head + b"\0".join(s.encode() for s in (request_id, accepted, retry_after)) + b"\0" + body


def seeds_line_result():
    rid = "7ac0eb1a-6c8c-4a4b-a3fa-8b4d4c2fe2ad"
    return {
        "push-200": line_answer(2, 200, {"sentMessages": [{"id": "461230966842064897",
                                                            "quoteToken": "IStG5h1Tz7b..."}]}, rid),
        "reply-400-token": line_answer(1, 400, {"message": "Invalid reply token"}, rid),
        "push-400-details": line_answer(2, 400, {"message": "The request body has 2 error(s)",
                                                 "details": [{"message": "May not be empty",
                                                              "property": "messages[0].text"},
                                                             {"message": "Must be one of the following values: [text, image]",
                                                              "property": "messages[1].type"}]}, rid),
        "push-409-accepted": line_answer(2, 409, {"message": "The retry key is already accepted"},
                                         rid, "1a2b3c4d-0000-4000-8000-000000000000"),
        "push-429-monthly": line_answer(2, 429, {"message": "You have reached your monthly limit."}, rid),
        "push-429-rate": line_answer(3, 429, {"message": "The API rate limit has been exceeded. Try again later."},
                                     rid, "", "5"),
        "push-503-date": line_answer(4, 503, b"<html>busy</html>", "", "", "Fri, 02 Jan 2026 00:00:00 GMT"),
        "push-503-rfc850": line_answer(4, 503, b"", "", "", "Friday, 02-Jan-26 00:00:00 GMT"),
        "push-503-asctime": line_answer(5, 503, b"", "", "", "Fri Jan  2 00:00:00 2026"),
        "profile-200": line_answer(6, 200, {"displayName": "LINE taro", "userId": USER, "language": "en",
                                            "pictureUrl": "https://profile.line-scdn.net/abcdefghijklmn",
                                            "statusMessage": "Hello, LINE!"}, rid),
        "profile-200-empty": line_answer(6, 200, {}, rid),
        "timeout": line_answer(2, 0, b"", transport=2),
        "status-0": line_answer(2, 0),
        "redirect": line_answer(7, 302, b"", rid),
    }


def quota_input(flags, contract, warn, cost, body):
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    return bytes([flags]) + struct.pack(">q", contract) + bytes([warn]) + struct.pack(">H", cost) + body


def seeds_quota_sync():
    return {
        "quota-limited": quota_input(6, 1000, 80, 1, {"type": "limited", "value": 1000}),
        "quota-none": quota_input(6, -1, 0, 5, {"type": "none"}),
        "quota-no-month": quota_input(2, 1000, 80, 1, {"type": "limited", "value": 500}),
        "consumption": quota_input(7, 1000, 80, 1, {"totalUsage": 500}),
        "consumption-over": quota_input(7, 1000, 100, 300, {"totalUsage": 999}),
        "consumption-huge": quota_input(7, -1, 80, 65535, {"totalUsage": 9223372036854775807}),
        "quota-500": quota_input(4, 1000, 80, 1, {"message": "Internal error"}),
    }


def seeds_pbjson():
    webhook = (f_bytes(1, envelope()) + f_bytes(2, "U" + "0" * 32) + f_bytes(3, "01FZ74A0TDDPYRVKNK77XKC3ZR") +
               f_varint(5, 1767225660000) + f_varint(6, 1) + f_bytes(7, f_varint(1, 1) + f_bytes(2, USER)) +
               f_bytes(8, "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA") + f_bytes(9, "message") +
               f_bytes(10, '{"type":"message"}'))
    delivery = (f_bytes(1, envelope()) + f_bytes(2, "5b9f5f0e-8f0c-4b8e-9b1d-2d6f1c3a4e5f") + f_varint(3, 2) +
                f_varint(4, 1) + f_varint(5, 1) + f_bytes(6, USER) + f_varint(12, 200) +
                f_bytes(15, f_bytes(1, "461230966842064897") + f_bytes(2, "q")))
    return {
        "webhook": b"\0" + webhook,
        "webhook-bad-utf8": b"\0" + f_bytes(2, b"\xff\xfe") + f_bytes(9, b"\xc3"),
        "channel": b"\2" + channel_config(),
        "send": b"\5" + send_request(2, to=USER, messages=[MSG]),
        "delivery": b"\6" + delivery,
        "envelope": b"\7" + envelope(),
        "truncated": b"\5" + send_request(2, to=USER, messages=[MSG])[:-3],
    }


def seeds_sched_input():
    """Mode byte 0: cron; 1: a scenario body; 2: a quiet window "from\\0to"."""
    crons = ["*/15 9-17 * * MON-FRI", "0 10 * * WED", "0 0 29 2 *", "0 0 31 2 *",
             "30 2 * * 0,7", "0 0 13 * FRI", "5/20 0 */13 jan-mar,DEC 1/2", "* * * * * *"]
    out = {"cron-%d" % i: b"\x00" + c.encode() for i, c in enumerate(crons)}
    msg = {"type": "text", "text": "hi {{display_name}}"}
    bodies = [
        {"name": "welcome", "trigger": {"type": "friend_added", "route": "qr_1"},
         "reentry": "once", "stop_on": {"tags": ["bought"], "blocked": True},
         "steps": [{"timing": {"after_s": 0, "from": "start"}, "messages": [msg]},
                   {"timing": {"day": 1, "at": "09:00"}, "messages": [msg],
                    "condition": {"tag": "warm"}},
                   {"timing": {"after_s": 3600},
                    "actions": [{"type": "add_tag", "tag": "done"},
                                {"type": "set_reminder",
                                 "reminder_id": "0b9e8d6c-1f2a-4b3c-9d4e-5f6a7b8c9d0e",
                                 "goal_at": "2027-01-05T10:00:00+09:00"}]}]},
        {"name": "t", "trigger": {"type": "tag_added", "tag": "vip"},
         "steps": [{"timing": {"after_s": 1, "day": 1}, "messages": [msg]}]},
    ]
    for i, b in enumerate(bodies):
        out["scenario-%d" % i] = b"\x01" + json.dumps(b).encode()
    for i, (f, t) in enumerate([("22:00", "08:00"), ("12:00", "13:30"), ("08:00", "08:00")]):
        out["quiet-%d" % i] = b"\x02" + f.encode() + b"\x00" + t.encode()
    return out


def webhook_large():
    """Bodies near ingest's 1 MiB cap that the parser accepts, so the 1 MiB run
    starts from them: 1,000 text events (WEBHOOK_EVENTS_MAX), and 15 events
    with 60 KB texts (under WEBHOOK_STRING_MAX). Written beside the
    hand-written seeds (which are left alone)."""
    def event(text):
        return {"type": "message", "mode": "active", "timestamp": 1767225660000,
                "source": {"type": "user", "userId": USER},
                "webhookEventId": "01JGM8T456789ABCDEFGHJKMNP",
                "deliveryContext": {"isRedelivery": False},
                "replyToken": "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA",
                "message": {"id": "468789577898262530", "type": "text",
                            "quoteToken": "q3Plxr4AgKd...", "text": text}}

    def body(events):
        return json.dumps({"destination": "U" + "0" * 32, "events": events},
                          separators=(",", ":"), ensure_ascii=False).encode()

    base = len(body([event("")] * 1000))
    pad = (1048576 - 8192 - base) // 1000
    many = body([event("Hello \U0001f600 " + "x" * (pad - 10))] * 1000)
    long_text = body([event("\u3042" * 20000)] * 15)
    d = os.path.join(CORPUS, "webhook_parse")
    for name in ("large-many-events.json", "large-long-text.json"):
        if os.path.exists(os.path.join(d, name)):
            os.remove(os.path.join(d, name))
    for name, data in (("large-1000-events.json", many), ("large-15-long-texts.json", long_text)):
        assert len(data) <= 1048576, name
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    webhook_large()
    write("jwt", seeds_jwt())
    write("base64", seeds_base64())
    write("link_token", seeds_link_token())
    write("httpd", {k: v.encode("latin-1") for k, v in seeds_httpd().items()})
    write("registry_input", seeds_registry_input())
    write("limits", seeds_limits())
    write("line_request", seeds_line_request())
    write("channel_config", seeds_channel_config())
    write("line_result", seeds_line_result())
    write("quota_sync", seeds_quota_sync())
    write("pbjson", seeds_pbjson())
    write("sched_input", seeds_sched_input())


if __name__ == "__main__":
    main()
