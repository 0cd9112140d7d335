"""Run zuul-registry's prune in a loop, in a process of its own.

tests/clients/test_prune_online.py starts this next to the servers::

    python -m tests.clients.prune_loop CONFIG STOP --grace G
        --upload-expiry U [--once] [--pause SECONDS]

Each run is ``prune(config, driver, upload_expiry=U, grace=G)`` on a
driver of its own, made from the config's storage (filesystem or Swift)
as ``zuul-registry prune`` does, opened before the run and closed after
it, and prints one JSON line: ``{"objects": {kind: count}, "held": bytes,
"freed": bytes}``, or ``{"error": traceback}`` if the run raised (the
loop goes on).  It stops before the next run once the file STOP exists;
with ``--once`` after one run.  Prune's own log goes to stderr.
"""

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import time
import traceback

from zuul_registry import config as config_module
from zuul_registry.app import make_driver
from zuul_registry.prune import prune


async def _once(config, *, grace, upload_expiry):
    driver = make_driver(config.storage)
    try:
        await driver.open()
        summary = await prune(config, driver, upload_expiry=upload_expiry,
                              grace=grace)
    finally:
        await driver.close()
    return {'objects': dict(summary.objects), 'held': summary.held,
            'freed': summary.freed}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    parser.add_argument('stop')
    parser.add_argument('--grace', type=float, required=True)
    parser.add_argument('--upload-expiry', type=float, required=True)
    parser.add_argument('--pause', type=float, default=0.3)
    parser.add_argument('--once', action='store_true')
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format='%(asctime)s %(process)d %(levelname)s %(name)s: '
               '%(message)s')
    config = config_module.load_config(args.config)
    while not os.path.exists(args.stop):
        started = time.time()
        try:
            result = asyncio.run(_once(config, grace=args.grace,
                                       upload_expiry=args.upload_expiry))
        except Exception:
            result = {'error': traceback.format_exc()}
        result['seconds'] = round(time.time() - started, 3)
        print(json.dumps(result), flush=True)
        if args.once:
            break
        time.sleep(random.uniform(0, args.pause))


if __name__ == '__main__':
    main()
