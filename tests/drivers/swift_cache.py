"""What Swift's proxy asks of memcache, in a dict in its own process.

tempauth refuses to work without a cache ("Memcache required"); the test
Swift uses this instead of running memcached.  Values go through JSON as
they would through memcache.
"""

import json
import time


class _Cache:
    """The memcache methods Swift calls."""

    def __init__(self):
        self._data = {}

    def _live(self, key):
        value, expires = self._data.get(key, (None, 0))
        if expires and expires < time.time():
            self._data.pop(key, None)
            return None
        return value

    def get(self, key, *args, **kwargs):
        value = self._live(key)
        return None if value is None else json.loads(value)

    def set(self, key, value, serialize=True, time=0, **kwargs):
        if time and time < 30 * 86400:
            time += _now()
        self._data[key] = (json.dumps(value), time)

    def incr(self, key, delta=1, time=0, **kwargs):
        value = int(self.get(key) or 0) + delta
        self.set(key, value, time=time)
        return value

    def decr(self, key, delta=1, time=0, **kwargs):
        return self.incr(key, -delta, time=time)

    def delete(self, key, *args, **kwargs):
        self._data.pop(key, None)

    def get_multi(self, keys, *args, **kwargs):
        return [self.get(key) for key in keys]

    def set_multi(self, mapping, *args, **kwargs):
        for key, value in mapping.items():
            self.set(key, value, **kwargs)


def _now():
    return time.time()


def filter_factory(global_conf, **local_conf):
    cache = _Cache()

    def make_filter(app):
        def middleware(env, start_response):
            env['swift.cache'] = cache
            return app(env, start_response)
        return middleware
    return make_filter
