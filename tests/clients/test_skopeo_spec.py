"""skopeo against the parts of the spec beyond push and pull: deleting,
listing tags page by page, and copying between repositories (a mount)."""

import http.client
import json
import urllib.parse

from tests import images
from tests.clients.tools import registry_get

NO_TLS = '--tls-verify=false'
# More than one page of tags when the client gives no `n` (skopeo never
# does; it follows the Link header).  zuul_registry.api.pagination.
TAG_COUNT = 1000 + 7


def _status(server, repository, reference):
    status, _, _ = registry_get('%s/v2/%s/manifests/%s' % (
        server.url, repository, reference))
    return status


def _tags(server, repository):
    status, _, body = registry_get('%s/v2/%s/tags/list' % (
        server.url, repository), accept='application/json')
    assert status == 200, body
    return json.loads(body)['tags']


def _push_tags(server, repository, image, tags):
    """Push `image` once over one connection, then tag it `tags`."""
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=30)

    def request(method, path, body=b'', headers=None):
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        assert response.status in (201, 202), (method, path, data)
        return response

    try:
        for blob in image.blobs:
            # POST then PUT: what every registry supports.
            location = request('POST', '/v2/%s/blobs/uploads/'
                               % repository).headers['Location']
            location = urllib.parse.urlsplit(location)
            query = '&'.join(filter(None, [
                location.query,
                urllib.parse.urlencode({'digest': blob.digest})]))
            request('PUT', '%s?%s' % (location.path, query), blob.data)
        for tag in tags:
            request('PUT', '/v2/%s/manifests/%s' % (repository, tag),
                    image.manifest.data,
                    {'Content-Type': image.manifest.media_type})
    finally:
        conn.close()


def test_skopeo_delete_removes_the_manifest_and_every_tag(
        skopeo, registry, oci_image):
    for tag in ('v1', 'also-v1'):
        skopeo.skopeo('copy', '--dest-tls-verify=false', oci_image.ref,
                      'docker://%s/test/deleted:%s' % (registry.host_port,
                                                       tag))
    skopeo.skopeo('copy', '--dest-tls-verify=false', oci_image.ref,
                  'docker://%s/test/kept:v1' % registry.host_port)
    digest = oci_image.image.digest
    assert _status(registry, 'test/deleted', digest) == 200

    skopeo.skopeo('delete', NO_TLS,
                  'docker://%s/test/deleted:v1' % registry.host_port)

    for reference in (digest, 'v1', 'also-v1'):
        assert _status(registry, 'test/deleted', reference) == 404
    assert _tags(registry, 'test/deleted') in ([], None)
    # The same image in another repository is untouched, blobs included.
    assert _status(registry, 'test/kept', 'v1') == 200
    skopeo.skopeo('inspect', NO_TLS,
                  'docker://%s/test/kept:v1' % registry.host_port)


def test_skopeo_list_tags_follows_every_page(skopeo, registry):
    image = images.make_image([{'tagged': b'many tags\n'}])
    tags = ['t%04d' % i for i in range(TAG_COUNT)]
    _push_tags(registry, 'test/many', image, tags)
    offset = registry.log_offset()

    result = skopeo.skopeo('list-tags', NO_TLS,
                           'docker://%s/test/many' % registry.host_port)

    listed = json.loads(result.stdout)['Tags']
    assert sorted(listed) == tags
    if registry.name == 'zuul-registry':
        # It took more than one request: a page, then the Link's next.
        registry.wait_for_log_lines(offset, 'tags/list?n=1000&last=t0999')


def test_skopeo_copy_between_repositories_mounts_the_blobs(
        skopeo, registry, oci_image):
    source = 'docker://%s/test/source:v1' % registry.host_port
    skopeo.skopeo('copy', '--dest-tls-verify=false', oci_image.ref, source)
    offset = registry.log_offset()

    skopeo.skopeo('copy', '--src-tls-verify=false',
                  '--dest-tls-verify=false', source,
                  'docker://%s/test/copy:v1' % registry.host_port)

    status, headers, body = registry_get('%s/v2/test/copy/manifests/v1'
                                         % registry.url)
    assert status == 200
    assert body == oci_image.image.manifest.data
    for blob in oci_image.image.blobs:
        status, _, data = registry_get('%s/v2/test/copy/blobs/%s' % (
            registry.url, blob.digest), accept='*/*')
        assert (status, data) == (200, blob.data)
    if registry.name == 'zuul-registry':
        # Layers are mounted; skopeo writes the small config itself.
        registry.wait_for_log_lines(offset, *(
            'Blob %s mounted into test/copy from test/source'
            % layer.blob.digest for layer in oci_image.image.layers))
