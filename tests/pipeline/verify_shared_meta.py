"""Checks, with boto3 (an independent S3 client), that runs sharing one meta bucket kept their own
run files:
  verify_shared_meta.py <meta_bucket> <scratch_dir> <run_name>=<books> ...
For each run: <run_name>/books_latest.db.gz holds <books> books and carries metadata
books=<books>, <run_name>/books_latest.csv.gz lists <books> rows, <run_name>/process_summary.json
and a <run_name>/timestamped/<ts>_process_summary.json exist; no key outside the runs' scopes and
no books_latest_kept_* (nothing was replaced). Exit 0 when all holds, else 1 with the problems on
stderr."""
import csv
import gzip
import io
import os
import sqlite3
import sys

import boto3
from botocore.config import Config


def main():
    bucket, scratch = sys.argv[1], sys.argv[2]
    runs = dict((a.split("=")[0], int(a.split("=")[1])) for a in sys.argv[3:])
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["GRIN_S3_ENDPOINT"],
        aws_access_key_id=os.environ["GRIN_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["GRIN_S3_SECRET_KEY"],
        region_name=os.environ.get("GRIN_S3_REGION", "us-east-1"),
        verify=os.environ["GRIN_S3_CA_FILE"],
        config=Config(s3={"addressing_style": "path"}),
    )
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    problems = []
    for k in keys:
        if k.split("/")[0] not in runs:
            problems.append(f"key outside the runs' scopes: {k}")
        if "books_latest_kept_" in k:
            problems.append(f"a backup was replaced: {k}")
    for run, books in runs.items():
        latest = f"{run}/books_latest.db.gz"
        head = s3.head_object(Bucket=bucket, Key=latest)
        if head["Metadata"].get("books") != str(books):
            problems.append(f"{latest} metadata {head['Metadata']!r}, expected books={books}")
        path = os.path.join(scratch, run + ".db")
        with open(path, "wb") as f:
            f.write(gzip.decompress(s3.get_object(Bucket=bucket, Key=latest)["Body"].read()))
        n = sqlite3.connect(f"file:{path}?mode=ro", uri=True).execute(
            "SELECT count(*) FROM books").fetchone()[0]
        if n != books:
            problems.append(f"{latest} holds {n} books, expected {books}")
        body = gzip.decompress(
            s3.get_object(Bucket=bucket, Key=f"{run}/books_latest.csv.gz")["Body"].read())
        rows = list(csv.reader(io.StringIO(body.decode())))
        if len(rows) - 1 != books:
            problems.append(f"{run}/books_latest.csv.gz has {len(rows) - 1} rows, expected {books}")
        if f"{run}/process_summary.json" not in keys:
            problems.append(f"{run}/process_summary.json missing")
        if not any(k.startswith(f"{run}/timestamped/") and k.endswith("_process_summary.json")
                   for k in keys):
            problems.append(f"{run}: no timestamped process_summary.json")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
