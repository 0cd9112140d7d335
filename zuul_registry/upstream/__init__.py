"""HTTP client of other registries, the source of pull-through content.

``client.UpstreamRegistry`` fetches manifests and streams blobs from one
upstream registry; ``auth`` answers its challenges (Bearer tokens from
the realm it names, or Basic credentials); ``challenge`` parses
``WWW-Authenticate``; ``transport`` holds the aiohttp session, timeouts,
TLS trust and the retries of requests that can be repeated.  Everything
raises the exceptions of ``errors``.  Nothing here knows about storage:
``zuul_registry.storage`` calls it, ``zuul_registry.api`` never does.
"""
