"""Keeping objects in the bucket's listing.

Ceph's RADOS Gateway 16.2 can leave an object out of its bucket listing
for good when a DELETE of the key races a PUT of it: the object is
there (HEAD and GET answer), ListObjects never names it, until the key
is written again.  Measured here: 2 to 3 of 600 such races.  Prune
finds the manifests to keep by listing their revisions, so a manifest
pushed while a client deleted it could lose its blobs to collection.

So after writing a small object (`put`), and after deleting a key, the
driver checks that a key which exists is listed, and copies it onto
itself if not.  Of a PUT and a DELETE racing, the one that ends last
sees the final state.  SeaweedFS and AWS keep their listings right;
the check costs them one ListObjectsV2 per put and one HEAD per deleted
key.
"""

import logging

from zuul_registry.drivers.s3_client import S3Error, describe, status_of

log = logging.getLogger('zuul_registry.drivers.s3')

# Copies before giving up on a listing.
ATTEMPTS = 3


async def listed(driver, key):
    """Whether the bucket listing names `key`."""
    try:
        page = await driver.client.call(
            'list_objects_v2', Bucket=driver.bucket, Prefix=key, MaxKeys=1)
    except Exception as e:
        raise S3Error('ListObjectsV2 %s: %s' % (key, describe(e))) from None
    # A key sorts before every longer key it is a prefix of.
    return any(entry['Key'] == key for entry in page.get('Contents', ()))


async def keep_listed(driver, key):
    """Make sure `key`, if it exists, is listed: while it is not, it is
    copied onto itself (bytes and metadata kept), which writes its index
    entry anew.  The copy names the version the HEAD found: one deleted
    or replaced since is left alone, never brought back (a replacement
    makes its own check)."""
    for attempt in range(ATTEMPTS):
        if await listed(driver, key):
            return
        head = await driver.head(key)
        if head is None:
            return
        log.warning('%s exists but the bucket listing lacks it (a DELETE '
                    'raced a PUT): copying it onto itself', key)
        try:
            await driver.client.call(
                'copy_object', Bucket=driver.bucket, Key=key,
                CopySource={'Bucket': driver.bucket, 'Key': key},
                CopySourceIfMatch=head['ETag'],
                MetadataDirective='REPLACE',
                Metadata=head.get('Metadata', {}))
        except Exception as e:
            if status_of(e) in (404, 412):
                return   # deleted or replaced meanwhile
            raise S3Error('CopyObject %s: %s' % (key, describe(e))) \
                from None
    log.error('%s is still missing from the bucket listing after %d '
              'copies', key, ATTEMPTS)


async def relist(driver, key):
    """After a deletion: a key written again meanwhile must be listed.
    One HEAD when it is gone, as it nearly always is."""
    if await driver.head(key) is not None:
        await keep_listed(driver, key)
