"""What the S3 driver finds out about its server when it opens.

Servers differ where the driver's guarantees depend on them, so it asks
with a few requests on keys under ``.zuul-registry-probe/`` (paths never
start with ".", so no object's):

* whether ``If-None-Match: *`` makes PutObject and CompleteMultipartUpload
  refuse an existing key (SeaweedFS: both; radosgw 16.2: PutObject only);
* whether a delimiter listing still names a sub-tree whose objects are all
  deleted (SeaweedFS does until it removes the empty directory): then the
  driver checks each sub-tree it lists.
"""

import logging

from zuul_registry.drivers import s3_multipart
from zuul_registry.drivers.s3_client import status_of

log = logging.getLogger('zuul_registry.drivers.s3')


def _key(driver):
    return driver.prefix + '.zuul-registry-probe/' + driver.new_token()


async def prefixes(driver):
    """Whether a listing names a sub-tree whose objects are gone."""
    key = _key(driver)
    call = driver.client.call
    await call('put_object', Bucket=driver.bucket, Key=key + '/tree/object',
               Body=b'')
    await call('delete_object', Bucket=driver.bucket,
               Key=key + '/tree/object')
    listed = [name async for name, _ in driver._listing(
        key + '/', delimiter='/')]
    driver.empty_prefixes = bool(listed)


async def conditions(driver):
    """Whether the server refuses an existing key on If-None-Match."""
    key = _key(driver)
    call = driver.client.call
    await call('put_object', Bucket=driver.bucket, Key=key, Body=b'')
    try:
        driver.conditional_put = await _refused(
            call('put_object', Bucket=driver.bucket, Key=key, Body=b'',
                 IfNoneMatch='*'))
        upload = s3_multipart.Upload(driver, key)
        await upload.start()
        try:
            etag = await upload.upload(1, b'x')
            driver.conditional_complete = await _refused(call(
                'complete_multipart_upload', Bucket=driver.bucket, Key=key,
                UploadId=upload.upload_id, IfNoneMatch='*',
                MultipartUpload={'Parts': [{'PartNumber': 1,
                                            'ETag': etag}]}))
        finally:
            if driver.conditional_complete is not False:
                await upload.abort()   # not completed: still there
    finally:
        await call('delete_object', Bucket=driver.bucket, Key=key)
    log.debug('S3 bucket %s: If-None-Match honoured on PutObject: %s, '
              'on CompleteMultipartUpload: %s', driver.bucket,
              driver.conditional_put, driver.conditional_complete)


async def _refused(request):
    """Whether `request` (a conditional write) got 412."""
    try:
        await request
    except Exception as e:
        if status_of(e) == 412:
            return True
        raise
    return False
