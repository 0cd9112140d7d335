"""Listing the content-addressed trees: ROOT/ALG/[HEX[:2]/]HEX."""

import logging

from zuul_registry import oci

log = logging.getLogger('zuul_registry.storage.listing')


async def digests(driver, root, *, levels):
    """The digests under root/ALG/..., `levels` directories deep below
    ALG (1: ALG/HEX; 2: ALG/HEX[:2]/HEX).  Names that are no digests
    are logged and left out."""
    found = []
    for algorithm in await driver.list(root):
        directories = [root + '/' + algorithm]
        for _ in range(levels - 1):
            directories = [directory + '/' + name
                           for directory in directories
                           for name in await driver.list(directory)]
        for directory in directories:
            for name in await driver.list(directory):
                try:
                    found.append(oci.Digest.parse(algorithm + ':' + name))
                except oci.GrammarError:
                    log.warning('Not a digest, left alone: %s/%s',
                                directory, name)
    return found
