"""Benchmark zuul-registry against the reference registry.

``python -m bench`` starts each registry under test itself (zuul-registry
from this checkout and CNCF Distribution's ``docker-registry``) on a free
loopback port with storage in a temporary directory, measures the same
workloads against both, and prints a table with the ratio ours/reference.

Modules:

``cli``          the options; ``runner`` the run, measurements interleaved
``servers``      start, probe and stop one registry process; its memory
``certs``        a self-signed certificate for ``--tls``
``large``        large blob push and pull
``small``        many small requests: blob HEAD, manifest GET, small push
``concurrent``   many clients at once (``--concurrent``): pulls of one
                 blob, pushes of different blobs
``pullthrough``  a zuul-registry mirror in front of an upstream
                 zuul-registry: first, cached and concurrent pulls
                 against direct pulls from the upstream; ``pulls`` the
                 timed pulls (time to first byte, several at once)
``measure``      time one piece of work, and who used the CPU meanwhile
``wire``         HTTP/1.1 as the client speaks it; ``connections`` the
                 client itself, small enough not to be the bottleneck
``report``       the table and the JSON file; ``pullthrough_report``
                 the pull-through table
"""
