"""One mover of test_moves_across_processes, in a process of its own:
`python -m tests.clients.move_pingpong CONFIG SRC DST ROUNDS READY GO`
opens the configured storage, says it is ready (creates READY), waits
for GO to exist, then moves SRC to DST ROUNDS times, a few
milliseconds apart (a missing SRC is no error), and prints how many
moves succeeded."""

import asyncio
import os
import random
import sys

from zuul_registry.app import make_driver
from zuul_registry.config.loading import load_config
from zuul_registry.drivers.base import ObjectNotFound


async def main(config_path, src, dst, rounds, ready, go):
    driver = make_driver(load_config(config_path).storage)
    await driver.open()
    moved = 0
    try:
        open(ready, 'w').close()
        while not os.path.exists(go):
            await asyncio.sleep(0.01)
        for _ in range(rounds):
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
    config_path, src, dst, rounds, ready, go = sys.argv[1:]
    asyncio.run(main(config_path, src, dst, int(rounds), ready, go))
