"""The configuration as the rest of the program sees it: frozen values."""

import dataclasses
from dataclasses import dataclass
from typing import Optional

READ = 'read'
WRITE = 'write'


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__('\n'.join(self.problems))


@dataclass(frozen=True)
class User:
    name: str
    password: Optional[str] = dataclasses.field(repr=False)  # plain, or
    access: str = READ  # READ or WRITE
    password_hash: Optional[str] = dataclasses.field(default=None,
                                                     repr=False)  # bcrypt


@dataclass(frozen=True)
class StorageConfig:
    driver: str
    root: Optional[str] = None            # filesystem
    container: Optional[str] = None       # swift, and one of:
    cloud: Optional[str] = None           # a cloud of clouds.yaml
    auth_url: Optional[str] = None        # or credentials
    auth_version: Optional[int] = None    # 1: tempauth, 3: Keystone v3
    user: Optional[str] = None            # v1
    key: Optional[str] = dataclasses.field(default=None, repr=False)
    username: Optional[str] = None        # v3
    password: Optional[str] = dataclasses.field(default=None, repr=False)
    project_name: Optional[str] = None
    user_domain_name: Optional[str] = None
    project_domain_name: Optional[str] = None
    region_name: Optional[str] = None     # v3 and cloud
    bucket: Optional[str] = None          # s3
    endpoint: Optional[str] = None        # None: AWS, by region
    region: Optional[str] = None
    prefix: Optional[str] = None
    access_key: Optional[str] = None      # None: boto3's credential chain
    secret_key: Optional[str] = dataclasses.field(default=None, repr=False)
    ca: Optional[str] = None              # PEM file trusted for endpoint
    redirect: bool = False                # blob GETs sent to presigned URLs
    link_size: Optional[int] = None       # None: the driver's part size


@dataclass(frozen=True)
class Upstream:
    """A registry asked for what was not pushed here (pull-through)."""
    url: str
    namespace: Optional[str] = None    # None: namespaces are off
    username: Optional[str] = None
    password: Optional[str] = dataclasses.field(default=None, repr=False)
    ca: Optional[str] = None           # PEM file trusted instead of system's
    tags: object = 'pin'               # 'pin', or seconds between checks


@dataclass(frozen=True)
class Config:
    storage: StorageConfig
    address: str = '127.0.0.1'
    port: int = 5000
    public_url: Optional[str] = None
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    secret: Optional[str] = dataclasses.field(default=None, repr=False)
    users: tuple = ()  # of User
    expiration: Optional[int] = None
    namespaced: bool = False
    default_namespace: str = 'docker.io'
    anonymous_push: bool = False
    anonymous_read: Optional[bool] = None   # None: allowed unless read users
    token_expiration: int = 3600
    manifest_size_limit: int = 4 * 1024 * 1024
    delete_enabled: bool = True   # false: manifest, tag, blob DELETE is 405
    prune_interval: Optional[int] = None   # seconds; serve prunes itself
    upstreams: tuple = ()   # of Upstream
    # seconds; prune expires manifests fetched from upstreams after this
    upstream_expiration: Optional[int] = None
    workers: object = 1   # serving processes: a count, or 'auto' (per CPU)
    metrics_address: str = '127.0.0.1'
    metrics_port: Optional[int] = None     # None: no metrics listener

    def upstream_for(self, namespace):
        """The Upstream serving `namespace` (None: namespaces off)."""
        for upstream in self.upstreams:
            if upstream.namespace == namespace:
                return upstream
        return None

    @property
    def anonymous_pull(self) -> bool:
        """Whether a client without credentials may pull."""
        if not self.users:
            return True
        if self.anonymous_read is not None:
            return self.anonymous_read
        return not any(user.access == READ for user in self.users)

    @property
    def anonymous_access(self) -> bool:
        """True when no users are configured: anyone may push and pull."""
        return not self.users
