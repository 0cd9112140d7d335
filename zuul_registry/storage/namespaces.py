"""Which namespace a repository name belongs to.

With namespaces off, every repository lives in one default area.

With namespaces on, the first component of a name decides, by the rule
docker uses to split "host/path" references: when the name has more than
one component and the first one contains "." or ":" or is "localhost", it
is a registry host and names the namespace; the rest is the repository.
Any other name belongs to the configured default namespace ("docker.io"
unless configured).  So podman, mirroring through "HOST:PORT/docker.io",
asks for "docker.io/library/alpine", docker, mirroring through "HOST:PORT",
asks for "library/alpine", and both reach the same image.  A name is at
most 255 characters spelled with its namespace ("docker.io/library/x"),
so that spelling always resolves too.

Each namespace is a separate storage area: its own blobs, uploads,
manifests and tags.
"""

from dataclasses import dataclass
from typing import Optional

from zuul_registry import oci


@dataclass(frozen=True)
class Repository:
    namespace: Optional[str]   # None: the single area of non-namespaced mode
    name: str                  # repository name inside the namespace

    def __str__(self):
        if self.namespace is None:
            return self.name
        return '%s/%s' % (self.namespace, self.name)


class Namespaces:

    def __init__(self, *, namespaced=False, default_namespace='docker.io'):
        self.namespaced = namespaced
        self.default_namespace = default_namespace

    def resolve(self, name):
        """Map a name from a URL to a Repository; raise GrammarError."""
        if len(name) > oci.NAME_MAX_LENGTH:
            raise oci.GrammarError('repository name longer than %d'
                                   % oci.NAME_MAX_LENGTH)
        if not self.namespaced:
            return Repository(None, oci.check_name(name))
        first, sep, rest = name.partition('/')
        if sep and oci.is_host(first):
            if not oci.HOST_RE.fullmatch(first):
                raise oci.GrammarError('invalid registry host %r'
                                       % first[:100])
            return Repository(first, oci.check_name(rest))
        repository = Repository(self.default_namespace, oci.check_name(name))
        # Its full spelling, which the catalog lists and tokens name, must
        # resolve too; docker counts the length the same way.
        if len(str(repository)) > oci.NAME_MAX_LENGTH:
            raise oci.GrammarError('repository name longer than %d with '
                                   'its namespace %s' % (
                                       oci.NAME_MAX_LENGTH,
                                       self.default_namespace))
        return repository
