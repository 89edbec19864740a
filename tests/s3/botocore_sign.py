#!/usr/bin/python3
"""Signs S3 requests with botocore, one JSON object per stdin line, for sigv4_test.cc.

Input:  {"method", "endpoint", "bucket", "key", "query": [[name, value], ...],
         "headers": [[name, value], ...], "body_hex", "amz_date", "access", "secret",
         "token", "region"}
Output: {"url_path", "creq", "sig"} per line. The object key is percent-encoded by botocore's
own rule for S3 keys (serialize.py: percent_encode(key, safe='/~')), not by us.
"""
import json
import sys

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

for line in sys.stdin:
    r = json.loads(line)
    creds = Credentials(r["access"], r["secret"], r.get("token") or None)
    auth = S3SigV4Auth(creds, "s3", r["region"])
    path = "/" + r["bucket"]
    if r["key"]:
        path += "/" + percent_encode(r["key"], safe="/~")
    req = AWSRequest(method=r["method"], url=r["endpoint"] + path,
                     headers=dict(r["headers"]), data=bytes.fromhex(r["body_hex"]),
                     params=[tuple(p) for p in r["query"]])
    req.context["timestamp"] = r["amz_date"]
    req.context["payload_signing_enabled"] = True
    auth._modify_request_before_signing(req)
    creq = auth.canonical_request(req)
    sts = auth.string_to_sign(req, creq)
    sig = auth.signature(sts, req)
    print(json.dumps({"url_path": path, "creq": creq, "sig": sig}), flush=True)
