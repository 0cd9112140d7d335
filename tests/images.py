"""Build small OCI images on disk, without a daemon and without the network.

An OCI image layout (image-spec ``image-layout.md``) is a directory::

    oci-layout                    {"imageLayoutVersion": "1.0.0"}
    index.json                    the entry point: an image index
    blobs/sha256/<hex>            every blob, named by its digest

The builders here write layers as gzip-compressed tar files made with
``tarfile`` and ``gzip`` (fixed mtimes and owners, so the same input gives
the same digests), an image config whose ``rootfs.diff_ids`` are the digests
of the uncompressed layers, an image manifest, and ``index.json`` naming the
result with ``org.opencontainers.image.ref.name`` so that clients can address
it as ``oci:DIR:TAG``.

Each builder returns an :class:`Image` (or :class:`ImageIndex`) describing
what it wrote, so a test can compare digests after a round trip through a
registry.
"""

import dataclasses
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile

OCI_LAYOUT = 'application/vnd.oci.image.layout.v1+json'
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'
DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
DOCKER_MANIFEST_LIST = (
    'application/vnd.docker.distribution.manifest.list.v2+json')
REF_NAME = 'org.opencontainers.image.ref.name'


def sha256_digest(data):
    """Return the ``sha256:<hex>`` digest of ``data``."""
    return 'sha256:' + hashlib.sha256(data).hexdigest()


@dataclasses.dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self):
        return sha256_digest(self.data)

    def descriptor(self, **extra):
        return dict(mediaType=self.media_type, digest=self.digest,
                    size=len(self.data), **extra)


@dataclasses.dataclass(frozen=True)
class Layer:
    blob: Blob          # the compressed layer as stored in the registry
    diff_id: str        # digest of the uncompressed tar
    files: dict         # path -> bytes, what the layer holds


@dataclasses.dataclass(frozen=True)
class Image:
    manifest: Blob
    config: Blob
    layers: tuple
    platform: dict

    @property
    def digest(self):
        return self.manifest.digest

    @property
    def blobs(self):
        return (self.config,) + tuple(layer.blob for layer in self.layers)


@dataclasses.dataclass(frozen=True)
class ImageIndex:
    index: Blob
    images: tuple

    @property
    def digest(self):
        return self.index.digest


def make_layer(files):
    """A gzip-compressed tar layer holding ``files`` ({path: bytes})."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            content = files[path]
            info = tarfile.TarInfo(path.lstrip('/'))
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = 'root'
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    # mtime=0 and no file name in the gzip header: reproducible digests.
    compressed = gzip.compress(tar_bytes, mtime=0)
    return Layer(blob=Blob(OCI_LAYER_GZIP, compressed),
                 diff_id=sha256_digest(tar_bytes), files=dict(files))


def make_image(files_per_layer, *, architecture='amd64', os_name='linux',
               variant=None, labels=None):
    """An image (manifest, config, layers); nothing is written yet."""
    layers = tuple(make_layer(files) for files in files_per_layer)
    platform = {'architecture': architecture, 'os': os_name}
    if variant:
        platform['variant'] = variant
    config = dict(
        platform,
        created='1970-01-01T00:00:00Z',
        config={'Labels': dict(labels or {}), 'Cmd': ['/hello']},
        rootfs={'type': 'layers',
                'diff_ids': [layer.diff_id for layer in layers]},
        history=[{'created': '1970-01-01T00:00:00Z',
                  'created_by': 'tests/images.py'} for _ in layers],
    )
    config_blob = Blob(OCI_CONFIG, _canonical(config))
    manifest = {
        'schemaVersion': 2,
        'mediaType': OCI_MANIFEST,
        'config': config_blob.descriptor(),
        'layers': [layer.blob.descriptor() for layer in layers],
    }
    return Image(manifest=Blob(OCI_MANIFEST, _canonical(manifest)),
                 config=config_blob, layers=layers, platform=platform)


def make_index(images):
    """An image index over ``images``, each described with its platform."""
    index = {
        'schemaVersion': 2,
        'mediaType': OCI_INDEX,
        'manifests': [image.manifest.descriptor(platform=image.platform)
                      for image in images],
    }
    return ImageIndex(index=Blob(OCI_INDEX, _canonical(index)),
                      images=tuple(images))


def write_layout(directory, tag, image):
    """Write ``image`` (Image or ImageIndex) as an OCI layout tagged ``tag``.

    An existing layout in ``directory`` keeps its other tags and blobs.
    """
    os.makedirs(os.path.join(directory, 'blobs', 'sha256'), exist_ok=True)
    if isinstance(image, ImageIndex):
        top = image.index
        blobs = [image.index]
        for member in image.images:
            blobs.extend((member.manifest,) + member.blobs)
    else:
        top = image.manifest
        blobs = [image.manifest, *image.blobs]
    for blob in blobs:
        _write_blob(directory, blob)
    with open(os.path.join(directory, 'oci-layout'), 'w') as f:
        json.dump({'imageLayoutVersion': '1.0.0'}, f)
    index_path = os.path.join(directory, 'index.json')
    manifests = []
    if os.path.exists(index_path):
        with open(index_path) as f:
            manifests = [m for m in json.load(f)['manifests']
                         if m.get('annotations', {}).get(REF_NAME) != tag]
    manifests.append(top.descriptor(annotations={REF_NAME: tag}))
    with open(index_path, 'wb') as f:
        f.write(_canonical({'schemaVersion': 2, 'mediaType': OCI_INDEX,
                            'manifests': manifests}))
    return image


def build_layout(directory, tag, *, files=None, architecture='amd64',
                 label=None):
    """A one-platform, two-layer image in an OCI layout; returns the Image.

    ``label`` goes into the file contents and the config, so two calls with
    different labels give two images with different digests.
    """
    label = label or 'zuul-registry test image'
    if files is None:
        files = [{'hello': b'hello from %s\n' % label.encode()},
                 {'etc/image-label': label.encode() + b'\n',
                  'data/random.bin': _pseudo_random(label, 64 * 1024)}]
    image = make_image(files, architecture=architecture,
                       labels={'test.label': label})
    return write_layout(directory, tag, image)


def build_multiarch_layout(directory, tag, *, platforms=('amd64', 'arm64'),
                           label=None):
    """An image index with one image per architecture; returns ImageIndex."""
    label = label or 'zuul-registry multi-platform test image'
    images = []
    for arch in platforms:
        text = '%s for %s' % (label, arch)
        images.append(make_image(
            [{'hello': b'hello from linux/%s\n' % arch.encode()},
             {'etc/arch': arch.encode() + b'\n',
              'data/random.bin': _pseudo_random(text, 32 * 1024)}],
            architecture=arch, labels={'test.label': text}))
    return write_layout(directory, tag, make_index(images))


def make_docker_archive(layout_dir, tag, archive_path, reference, *,
                        env=None, policy=None):
    """Turn ``oci:layout_dir:tag`` into a ``docker-archive:`` tarball.

    ``reference`` (``name:tag``) is recorded in the archive's manifest.json.
    skopeo converts the image to Docker schema 2 on the way.
    """
    cmd = ['skopeo']
    if policy:
        cmd += ['--policy', policy]
    cmd += ['copy', '--quiet', 'oci:%s:%s' % (layout_dir, tag),
            'docker-archive:%s:%s' % (archive_path, reference)]
    subprocess.run(cmd, check=True, env=env, capture_output=True,
                   timeout=120)
    return archive_path


def read_layout_blob(directory, digest):
    algorithm, hexdigest = digest.split(':', 1)
    with open(os.path.join(directory, 'blobs', algorithm, hexdigest),
              'rb') as f:
        return f.read()


def read_layout_index(directory):
    with open(os.path.join(directory, 'index.json')) as f:
        return json.load(f)


def _write_blob(directory, blob):
    algorithm, hexdigest = blob.digest.split(':', 1)
    path = os.path.join(directory, 'blobs', algorithm, hexdigest)
    if not os.path.exists(path):
        with open(path, 'wb') as f:
            f.write(blob.data)


def _canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(',', ':')).encode()


def _pseudo_random(seed, size):
    """Deterministic incompressible bytes, so layers have realistic sizes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b'%s:%d' % (seed.encode(), counter)).digest()
        counter += 1
    return bytes(out[:size])
