#!/usr/bin/env python3
"""Multipart uploads through boto3 (an independent client), for the litter tests.

usage: multipart_s3.py begin <bucket> <key>      prints the new upload's id (one 5 MiB part sent)
       multipart_s3.py list <bucket>             prints "<key> <upload id>" per pending upload
       multipart_s3.py abort <bucket> <key> <id>
env:   GRIN_S3_ENDPOINT GRIN_S3_CA_FILE GRIN_S3_ACCESS_KEY GRIN_S3_SECRET_KEY GRIN_S3_REGION
"""
import os
import sys

import boto3
from botocore.config import Config


def main():
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["GRIN_S3_ENDPOINT"],
        aws_access_key_id=os.environ["GRIN_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["GRIN_S3_SECRET_KEY"],
        region_name=os.environ.get("GRIN_S3_REGION", "us-east-1"),
        verify=os.environ["GRIN_S3_CA_FILE"],
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
    )
    cmd, bucket = sys.argv[1], sys.argv[2]
    if cmd == "begin":
        key = sys.argv[3]
        up = s3.create_multipart_upload(Bucket=bucket, Key=key)
        s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=1,
                       Body=b"x" * (5 * 1024 * 1024))
        print(up["UploadId"])
    elif cmd == "list":
        for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            print(u["Key"], u["UploadId"])
    elif cmd == "abort":
        s3.abort_multipart_upload(Bucket=bucket, Key=sys.argv[3], UploadId=sys.argv[4])
    return 0


if __name__ == "__main__":
    sys.exit(main())
