#!/usr/bin/python3
"""Independent check of objects on an S3 server with boto3, for s3_swift_test.cc.

Reads a JSON list of {"bucket", "key", "file"} on stdin; endpoint, CA file and credentials come
from the environment (GRIN_S3_ENDPOINT, GRIN_S3_CA_FILE, GRIN_S3_ACCESS_KEY, GRIN_S3_SECRET_KEY),
never from argv. Prints one JSON object per input: key, same (bytes identical to the file),
size, etag, metadata.
"""
import hashlib
import json
import os
import sys

import boto3
import botocore.config

s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["GRIN_S3_ENDPOINT"],
    aws_access_key_id=os.environ["GRIN_S3_ACCESS_KEY"],
    aws_secret_access_key=os.environ["GRIN_S3_SECRET_KEY"],
    region_name=os.environ.get("GRIN_S3_REGION", "us-east-1"),
    verify=os.environ["GRIN_S3_CA_FILE"],
    config=botocore.config.Config(s3={"addressing_style": "path"},
                                  retries={"max_attempts": 3}),
)
for item in json.load(sys.stdin):
    head = s3.head_object(Bucket=item["bucket"], Key=item["key"])
    body = s3.get_object(Bucket=item["bucket"], Key=item["key"])["Body"]
    remote = hashlib.sha256()
    n = 0
    for chunk in iter(lambda: body.read(1 << 20), b""):
        remote.update(chunk)
        n += len(chunk)
    local = hashlib.sha256()
    with open(item["file"], "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            local.update(chunk)
    print(json.dumps({"key": item["key"], "same": remote.digest() == local.digest(),
                      "size": n, "etag": head["ETag"].strip('"'),
                      "metadata": head.get("Metadata", {})}), flush=True)
