"""What the S3 driver finds out about its server when it opens.

Servers differ where the driver's guarantees depend on them, so it asks
with a few requests on keys under ``.zuul-registry-probe/`` (paths never
start with ".", so no object's):

* whether ``If-None-Match: *`` makes PutObject refuse an existing key
  (SeaweedFS and radosgw 16.2 do);
* whether a delimiter listing still names a sub-tree whose objects are all
  deleted (SeaweedFS does until it removes the empty directory): then the
  driver checks each sub-tree it lists.
"""

import logging

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
    finally:
        await call('delete_object', Bucket=driver.bucket, Key=key)
    log.debug('S3 bucket %s: If-None-Match honoured on PutObject: %s',
              driver.bucket, driver.conditional_put)


async def _refused(request):
    """Whether `request` (a conditional write) got 412."""
    try:
        await request
    except Exception as e:
        if status_of(e) == 412:
            return True
        raise
    return False
