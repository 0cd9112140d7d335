"""Time one piece of work against one registry and see who used the CPU."""

import dataclasses
import os
import threading
import time

CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


def machine_busy_seconds():
    """CPU seconds all CPUs spent busy since boot (including steal)."""
    with open('/proc/stat') as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class RssSampler:
    """Sample a process's VmRSS in a thread; ``peak_kib`` is the largest."""

    def __init__(self, registry, *, interval=0.02, limit=3600.0):
        self.registry = registry
        self.interval = interval
        self.limit = limit
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                rss = self.registry.memory_kib().get('VmRSS', 0)
            except OSError:
                return
            self.peak_kib = max(self.peak_kib, rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            rss = self.registry.memory_kib().get('VmRSS', 0)
            self.peak_kib = max(self.peak_kib, rss)
        except OSError:
            pass


@dataclasses.dataclass(frozen=True)
class Sample:
    """One timed run: how much work, how long, and who spent the CPU."""

    amount: float          # bytes or requests
    seconds: float
    client_cpu: float      # seconds of CPU this process used
    server_cpu: float      # seconds of CPU the server process used
    other_cpu: float       # seconds of CPU anything else on the machine used
    peak_rss_kib: int = 0  # sampled during the run (large blobs only)

    @property
    def rate(self):
        return self.amount / self.seconds


def measure(registry, amount, work, *, sample_rss=False):
    """Run ``work()`` once and time it. ``work`` may return the seconds it
    measured itself (to leave its setup out); otherwise the call is timed."""
    sampler = RssSampler(registry) if sample_rss else None
    busy0 = machine_busy_seconds()
    cpu0, server0 = time.process_time(), registry.cpu_seconds()
    start = time.perf_counter()
    if sampler:
        with sampler:
            seconds = work()
    else:
        seconds = work()
    wall = time.perf_counter() - start
    cpu, server = time.process_time() - cpu0, registry.cpu_seconds() - server0
    other = machine_busy_seconds() - busy0 - cpu - server
    registry.check_alive()
    # CPU is counted over the whole call, the time maybe over less of it
    scale = (seconds or wall) / wall
    return Sample(amount, seconds or wall, cpu * scale, server * scale,
                  max(0.0, other * scale), sampler.peak_kib if sampler else 0)
