"""Freeing a replaced file's blocks where no request waits for it.

A rename over a file whose last name that was frees the old file's
blocks inside the rename call.  On ext4 (mounted with online discard
here) that is about 55 ms for 256 MiB, 13 ms of it CPU, and the request
that replaces the file waits for all of it: a blob pushed again (a
client that did not ask first, two jobs pushing one layer) replaces the
stored copy when its upload completes.

So a large file about to be replaced first gets a second name in the
driver's scratch directory.  The rename then drops one of its two
names, which costs nothing, and the scratch name is unlinked later in
the driver's pool.  Should the process die first, the scratch name is
removed with the rest of its scratch directory (filesystem_scratch).
"""

import os

# Smaller files are replaced as they are: setting them aside would cost
# more than freeing them.
LARGE = 1024 * 1024


class Release:
    """Sets replaced files aside (`new_name` gives a scratch path) and
    frees them with `submit(function, path)` (a thread pool's)."""

    def __init__(self, new_name, submit):
        self._new_name = new_name
        self._submit = submit

    def set_aside(self, full):
        """A second name for the large file at `full`, or None (small,
        missing, or the file system refuses the link)."""
        try:
            if os.stat(full).st_size < LARGE:
                return None
            aside = self._new_name()
            os.link(full, aside)
        except OSError:
            # Missing, a directory, or no hard links here: replace as is.
            return None
        return aside

    def free(self, aside):
        """Unlink `aside` in the pool; at once if the pool is closed.
        The future, or None."""
        if aside is None:
            return None
        try:
            return self._submit(unlink_quietly, aside)
        except RuntimeError:   # shut down: no thread to leave it to
            unlink_quietly(aside)
            return None


def unlink_quietly(name):
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
