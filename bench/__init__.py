"""Benchmark zuul-registry against the reference registry.

``python -m bench`` starts each registry under test itself (zuul-registry
from this checkout and CNCF Distribution's ``docker-registry``) on a free
loopback port with storage in a temporary directory, measures the same
workloads against both, and prints a table with the ratio ours/reference.

Modules:

``wire``       a deliberately small HTTP/1.1 client (blocking and asyncio),
               cheap enough that the client is never the bottleneck
``certs``      a self-signed certificate for ``--tls``
``servers``    start, probe, measure and stop one registry process
``workloads``  the measurements: large blob push and pull, many small
               requests (blob HEAD, manifest GET, small blob push)
``report``     the table and the JSON file
``cli``        the options and the run
"""
