"""One mover of test_moves_across_processes, in a process of its own:
`python -m tests.clients.move_pingpong CONFIG SRC DST SECONDS READY GO`
opens the configured storage, says it is ready (creates READY), waits
for GO to exist, then moves SRC to DST again and again for SECONDS, a
few milliseconds apart (a missing SRC is no error), and prints how many
moves succeeded.  A time, not a count: a move takes a few microseconds
on a filesystem and many milliseconds on a loaded S3 server, and the
two processes must overlap either way."""

import asyncio
import os
import random
import sys

from zuul_registry.app import make_driver
from zuul_registry.config.loading import load_config
from zuul_registry.drivers.base import ObjectNotFound


async def main(config_path, src, dst, seconds, ready, go):
    driver = make_driver(load_config(config_path).storage)
    await driver.open()
    moved = 0
    try:
        open(ready, 'w').close()
        while not os.path.exists(go):
            await asyncio.sleep(0.01)
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            try:
                await driver.move(src, dst)
                moved += 1
            except ObjectNotFound:
                pass
            # Spread over time, so that the two processes interleave
            # however fast one move is (a rename).
            await asyncio.sleep(random.uniform(0, 0.005))
    finally:
        await driver.close()
    print(moved)


if __name__ == '__main__':
    config_path, src, dst, seconds, ready, go = sys.argv[1:]
    asyncio.run(main(config_path, src, dst, float(seconds), ready, go))
