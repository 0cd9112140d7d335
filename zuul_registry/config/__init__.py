"""The registry's configuration: YAML with one top-level key, registry.

`load_config` reads, substitutes and validates a file once, into the
frozen values of `model`; `checks` and `storage` hold the schema.
"""

from zuul_registry.config.loading import (
    default_config, describe, load_config, parse_config)
from zuul_registry.config.model import (
    READ, WRITE, Config, ConfigError, StorageConfig, User)

__all__ = ['READ', 'WRITE', 'Config', 'ConfigError', 'StorageConfig', 'User',
           'default_config', 'describe', 'load_config', 'parse_config']
