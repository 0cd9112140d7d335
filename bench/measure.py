"""Time one piece of work against one registry and see who used the CPU."""

import dataclasses
import os
import threading
import time

from bench.servers import read_status

CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


def machine_busy_seconds():
    """CPU seconds all CPUs spent busy since boot (including steal)."""
    with open('/proc/stat') as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class RssSampler:
    """Sample the server's VmRSS in a thread; ``peak_kib`` is the largest
    of any one of its processes (with workers: supervisor or a worker)."""

    def __init__(self, registry, *, interval=0.02, limit=3600.0):
        self.registry = registry
        self.interval = interval
        self.limit = limit
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _largest(self):
        found = 0
        for pid in self._pids:
            try:
                found = max(found, read_status(pid).get('VmRSS', 0))
            except OSError:
                pass
        return found

    def _run(self):
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.peak_kib = max(self.peak_kib, self._largest())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._pids = self.registry.pids()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak_kib = max(self.peak_kib, self._largest())


@dataclasses.dataclass(frozen=True)
class Sample:
    """One timed run: how much work, how long, and who spent the CPU."""

    amount: float          # bytes or requests
    seconds: float
    client_cpu: float      # seconds of CPU this process used
    server_cpu: float      # seconds of CPU the server process used
    other_cpu: float       # seconds of CPU anything else on the machine used
    peak_rss_kib: int = 0  # sampled during the run (large blobs only)
    # VmHWM of each server process during this run alone (reset before
    # it), largest first; empty if the kernel did not allow the reset
    process_peaks_kib: tuple = ()
    latencies: tuple = ()  # seconds of each client (concurrent kinds)

    @property
    def rate(self):
        return self.amount / self.seconds


def measure(registry, amount, work, *, sample_rss=False):
    """Run ``work()`` once and time it. ``work`` may return the seconds it
    measured itself (to leave its setup out), or (seconds, latencies);
    otherwise the call is timed. Each server process's VmHWM is reset
    before and read after, so the sample has the run's own peaks."""
    sampler = RssSampler(registry) if sample_rss else None
    reset = registry.reset_peaks()
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
    peaks = registry.checkpoint_memory() if reset else {}
    latencies = ()
    if isinstance(seconds, tuple):
        seconds, latencies = seconds
    # CPU is counted over the whole call, the time maybe over less of it
    scale = (seconds or wall) / wall
    return Sample(amount, seconds or wall, cpu * scale, server * scale,
                  max(0.0, other * scale), sampler.peak_kib if sampler else 0,
                  tuple(sorted(peaks.values(), reverse=True)),
                  tuple(latencies))
