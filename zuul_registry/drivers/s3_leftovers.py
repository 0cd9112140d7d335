"""The S3 driver's `collect_leftovers`: incomplete multipart uploads.

S3 objects share no storage, so what no object needs is only the parts
of multipart uploads that were neither completed nor aborted: a write or
a concatenation a crash interrupted, or whose abort failed.  The server
keeps (and bills) them until they are aborted.  An upload is a leftover
when it was started, and its last part written, before the cut-off: a
write still in progress uploads a part every `part_size` bytes.
"""

import datetime

from zuul_registry.drivers import base
from zuul_registry.drivers.s3_client import S3Error, describe, is_not_found


async def collect(driver, *, before, dry_run):
    leftovers = []
    async for upload in _uploads(driver):
        if _time(upload.get('Initiated')) >= before:
            continue
        parts = await _parts(driver, upload)
        if parts is None or any(_time(part.get('LastModified')) >= before
                                for part in parts):
            continue   # gone meanwhile, or still being written
        leftovers.append(base.Leftover(
            '%s (upload %s)' % (upload['Key'][len(driver.prefix):],
                              upload['UploadId']),
            sum(part.get('Size', 0) for part in parts)))
        if not dry_run:
            try:
                await driver.client.call(
                    'abort_multipart_upload', Bucket=driver.bucket,
                    Key=upload['Key'], UploadId=upload['UploadId'])
            except Exception as e:
                if not is_not_found(e):
                    raise S3Error('AbortMultipartUpload %s: %s'
                                  % (upload['Key'], describe(e))) from None
    return leftovers


async def _uploads(driver):
    """Every incomplete multipart upload under the driver's prefix."""
    kwargs = {'Bucket': driver.bucket, 'Prefix': driver.prefix}
    while True:
        try:
            page = await driver.client.call('list_multipart_uploads',
                                            **kwargs)
        except Exception as e:
            raise S3Error('ListMultipartUploads: %s' % describe(e)) \
                from None
        for upload in page.get('Uploads', ()):
            yield upload
        if not page.get('IsTruncated'):
            return
        kwargs['KeyMarker'] = page['NextKeyMarker']
        kwargs['UploadIdMarker'] = page['NextUploadIdMarker']


async def _parts(driver, upload):
    """The parts uploaded so far, or None if the upload is gone."""
    parts = []
    kwargs = {'Bucket': driver.bucket, 'Key': upload['Key'],
              'UploadId': upload['UploadId']}
    while True:
        try:
            page = await driver.client.call('list_parts', **kwargs)
        except Exception as e:
            if is_not_found(e):
                return None
            raise S3Error('ListParts %s: %s' % (upload['Key'], describe(e))) \
                from None
        parts += page.get('Parts', ())
        if not page.get('IsTruncated'):
            return parts
        kwargs['PartNumberMarker'] = page['NextPartNumberMarker']


def _time(moment):
    """Seconds since the epoch of a datetime from boto3 (UTC if naive)."""
    if not isinstance(moment, datetime.datetime):
        return float('inf')   # unknown: never old enough
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()
