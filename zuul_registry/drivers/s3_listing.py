"""Keeping objects in the bucket's listing.

Ceph's RADOS Gateway 16.2 can leave an object out of its bucket listing
for good when a DELETE of the key races a PUT of it: the object is
there (HEAD and GET answer), ListObjects never names it, until the key
is written again.  Measured here: 2 to 3 of 600 such races.  Prune
finds the manifests to keep by listing their revisions, so a manifest
pushed while a client deleted it could lose its blobs to collection.

So after writing a small object (`put`), and after deleting a key, the
driver checks that a key which exists is listed, and writes it again if
not.  Of a PUT and a DELETE racing, the one that ends last sees the
final state.  SeaweedFS and AWS keep their listings right; the check
costs them one ListObjectsV2 per put and one HEAD per deleted key.
"""

import logging

from zuul_registry.drivers.s3_client import S3Error, describe

log = logging.getLogger('zuul_registry.drivers.s3')

# Writes again before giving up on a listing.
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


async def keep_listed(driver, key, rewrite):
    """Make sure `key`, if it exists, is listed: `rewrite()` writes it
    again (its bytes and metadata) while it is not."""
    for attempt in range(ATTEMPTS):
        if await listed(driver, key) or await driver.head(key) is None:
            return
        log.warning('%s exists but the bucket listing lacks it (a DELETE '
                    'raced a PUT): writing it again', key)
        await rewrite()
    log.error('%s is still missing from the bucket listing after %d '
              'writes', key, ATTEMPTS)


async def relist(driver, key):
    """After a deletion: a key written again meanwhile must be listed
    (copied onto itself, which writes its index entry anew)."""
    head = await driver.head(key)
    if head is None:
        return

    async def copy_onto_itself():
        try:
            await driver.client.call(
                'copy_object', Bucket=driver.bucket, Key=key,
                CopySource={'Bucket': driver.bucket, 'Key': key},
                MetadataDirective='REPLACE',
                Metadata=head.get('Metadata', {}))
        except Exception as e:
            raise S3Error('CopyObject %s: %s' % (key, describe(e))) \
                from None
    await keep_listed(driver, key, copy_onto_itself)
