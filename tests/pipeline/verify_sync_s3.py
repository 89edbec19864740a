#!/usr/bin/env python3
"""Independent check of a sync into S3 (boto3, not grin-jobs code).

usage: verify_sync_s3.py <expected.json> <books.db> <books_export.csv>
env:   GRIN_S3_ENDPOINT GRIN_S3_CA_FILE GRIN_S3_ACCESS_KEY GRIN_S3_SECRET_KEY GRIN_S3_REGION

expected.json: {"raw_bucket", "full_bucket", "books": {barcode: {"plaintext": path, "etag": e}}}
Checks every raw object is byte-identical to the fixture's plaintext with the right
encrypted_etag metadata, every OCR JSONL decodes to the plaintext's pages (NNNNNNNN.txt, gaps ""),
and the CSV matches the database. Prints one line per problem; exit 1 if any.
"""
import csv
import gzip
import io
import json
import os
import re
import sqlite3
import sys
import tarfile

import boto3
from botocore.config import Config


def pages_of(tar_bytes):
    pages = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:gz") as tf:
        for m in tf.getmembers():
            name = os.path.basename(m.name)
            if m.isfile() and re.fullmatch(r"\d{8}\.txt", name):
                pages[int(name[:8])] = tf.extractfile(m).read().decode("utf-8", "replace")
    if not pages:
        return []
    return [pages.get(i, "") for i in range(1, max(pages) + 1)]


def main():
    expected = json.load(open(sys.argv[1]))
    db_path, csv_path = sys.argv[2], sys.argv[3]
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["GRIN_S3_ENDPOINT"],
        aws_access_key_id=os.environ["GRIN_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["GRIN_S3_SECRET_KEY"],
        region_name=os.environ.get("GRIN_S3_REGION", "us-east-1"),
        verify=os.environ["GRIN_S3_CA_FILE"],
        config=Config(s3={"addressing_style": "path"}),
    )
    problems = []
    for barcode, want in sorted(expected["books"].items()):
        plain = open(want["plaintext"], "rb").read()
        raw = s3.get_object(Bucket=expected["raw_bucket"], Key=f"{barcode}/{barcode}.tar.gz")
        body = raw["Body"].read()
        if body != plain:
            problems.append(f"{barcode}: raw object differs from the fixture ({len(body)} vs {len(plain)} bytes)")
        # Swift's s3api hands back metadata of multipart uploads with '-' for '_' (a Swift quirk;
        # AWS keeps the name as sent), so accept that spelling too.
        meta = raw["Metadata"]
        stored = meta.get("encrypted_etag", meta.get("encrypted-etag"))
        if stored != want["etag"]:
            problems.append(f"{barcode}: encrypted_etag {stored!r} != {want['etag']!r}")
        full = s3.get_object(Bucket=expected["full_bucket"], Key=f"{barcode}_ocr.jsonl.gz")
        lines = gzip.decompress(full["Body"].read()).decode("utf-8").splitlines()
        got = [json.loads(l) for l in lines]
        if got != pages_of(plain):
            problems.append(f"{barcode}: OCR JSONL does not match the fixture's pages")
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    db_rows = {r[0]: r[1] for r in db.execute("SELECT barcode, encrypted_etag FROM books")}
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    csv_rows = {r["Barcode"]: r["Encrypted ETag"] or None for r in rows}
    if csv_rows != db_rows:
        problems.append(f"CSV ({len(csv_rows)} rows) does not match the database ({len(db_rows)} rows)")
    for p in problems:
        print(p)
    print(f"checked {len(expected['books'])} books, {len(csv_rows)} CSV rows: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
