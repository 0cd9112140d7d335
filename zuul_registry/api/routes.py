"""The one route table of the registry API."""

from zuul_registry.api import (base, blobs, catalog, health, manifests,
                               referrers, tags, token, uploads)

# A repository name spans several path components, so it is matched
# greedily; each route ends in fixed words the name cannot swallow.
_NAME = '{name:.+}'

ROUTES = [
    ('/v2/', {'GET': base.api_version}),
    ('/v2/_catalog', {'GET': catalog.list_catalog}),
    ('/auth/token', {'GET': token.get_token, 'POST': token.post_token}),
    ('/v2/%s/blobs/uploads/' % _NAME, {'POST': uploads.start_upload}),
    ('/v2/%s/blobs/uploads/{upload_id}' % _NAME, {
        'PATCH': uploads.patch_upload,
        'PUT': uploads.finish_upload,
        'GET': uploads.upload_status,
        'DELETE': uploads.cancel_upload,
    }),
    ('/v2/%s/blobs/{digest}' % _NAME, {
        'GET': blobs.get_blob,
        'HEAD': blobs.head_blob,
        'DELETE': blobs.delete_blob,
    }),
    ('/v2/%s/manifests/{reference}' % _NAME, {
        'GET': manifests.get_manifest,
        'HEAD': manifests.get_manifest,
        'PUT': manifests.put_manifest,
        'DELETE': manifests.delete_manifest,
    }),
    ('/v2/%s/tags/list' % _NAME, {'GET': tags.list_tags}),
    ('/v2/%s/referrers/{digest}' % _NAME, {
        'GET': referrers.list_referrers,
    }),
]


def add_routes(app):
    """Add every route; HEAD is answered wherever GET is."""
    health.add_routes(app)
    for path, methods in ROUTES:
        resource = app.router.add_resource(path)
        for method, handler in methods.items():
            resource.add_route(method, handler)
        if 'GET' in methods and 'HEAD' not in methods:
            resource.add_route('HEAD', methods['GET'])
