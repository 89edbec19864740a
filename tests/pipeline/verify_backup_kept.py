"""Checks, with boto3 (an independent S3 client), the database backups a sync kept on S3:
  verify_backup_kept.py <meta_bucket> <latest_books> <kept_books> <scratch_dir> [<run_name>]
Keys are under "<run_name>/" (the run's meta scope) when given. books_latest.db.gz must hold <latest_books> books and carry metadata books=<latest_books>; exactly
one books_latest_kept_*.db.gz must hold <kept_books> books with metadata books=<kept_books>.
Exit 0 when all holds, else 1 with the problems on stderr."""
import gzip
import os
import sqlite3
import sys

import boto3
from botocore.config import Config


def books_in(s3, bucket, key, scratch):
    body = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    path = os.path.join(scratch, key.replace("/", "_") + ".db")
    with open(path, "wb") as f:
        f.write(body)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    return db.execute("SELECT count(*) FROM books").fetchone()[0]


def main():
    bucket, latest_books, kept_books, scratch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    scope = sys.argv[5] + "/" if len(sys.argv) > 5 else ""
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
    head = s3.head_object(Bucket=bucket, Key=scope + "books_latest.db.gz")
    if head["Metadata"].get("books") != str(latest_books):
        problems.append(f"books_latest.db.gz metadata {head['Metadata']!r}")
    if books_in(s3, bucket, scope + "books_latest.db.gz", scratch) != latest_books:
        problems.append("books_latest.db.gz holds the wrong number of books")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
            if o["Key"].startswith(scope + "books_latest_kept_")]
    if len(keys) != 1:
        problems.append(f"kept backups: {keys!r}")
    for key in keys:
        meta = s3.head_object(Bucket=bucket, Key=key)["Metadata"]
        if meta.get("books") != str(kept_books):
            problems.append(f"{key} metadata {meta!r}")
        if books_in(s3, bucket, key, scratch) != kept_books:
            problems.append(f"{key} holds the wrong number of books")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
