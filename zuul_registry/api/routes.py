"""The one route table of the registry API."""

from zuul_registry.api import base, blobs, manifests, tags, token, uploads

# A repository name spans several path components, so it is matched
# greedily; each route ends in fixed words the name cannot swallow.
_NAME = '{name:.+}'

ROUTES = [
    ('/v2/', {'GET': base.api_version}),
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
    }),
    ('/v2/%s/manifests/{reference}' % _NAME, {
        'GET': manifests.get_manifest,
        'HEAD': manifests.get_manifest,
        'PUT': manifests.put_manifest,
    }),
    ('/v2/%s/tags/list' % _NAME, {'GET': tags.list_tags}),
]


def add_routes(app):
    for path, methods in ROUTES:
        resource = app.router.add_resource(path)
        for method, handler in methods.items():
            resource.add_route(method, handler)
