"""GET /v2/<name>/referrers/<digest> (OCI Distribution 1.1).

An image index of the descriptors of every manifest in the repository
whose subject is <digest>; an unknown digest (or repository) has an empty
one, never 404.  ``?artifactType=`` (repeatable) keeps the descriptors of
those artifact types and says so in OCI-Filters-Applied.  The list is
never paged.
"""

import json

from aiohttp import web

from zuul_registry import oci
from zuul_registry.api import base


async def list_referrers(request):
    repository = base.repository(request)
    subject = base.digest(request.match_info['digest'])
    entries = await base.storage(request).referrers.list(repository,
                                                         subject)
    headers = {'Content-Type': oci.OCI_INDEX}
    wanted = {value for value in request.query.getall('artifactType', ())
              if value}
    if wanted:
        entries = [entry for entry in entries
                   if entry.get('artifactType') in wanted]
        headers[oci.FILTERS_APPLIED_HEADER] = 'artifactType'
    body = {'schemaVersion': 2, 'mediaType': oci.OCI_INDEX,
            'manifests': entries}
    return web.Response(body=json.dumps(body).encode('utf8'),
                        headers=headers)
