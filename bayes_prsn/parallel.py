"""Independent fits side by side on threads (the smoothing choice's validation fits).

A fit's compiled SVI steps use one CPU core, and JAX releases the GIL while
a compiled program runs, so fits that do not depend on each other (the
folds of a K-fold choice, the encoder-smoothness candidates) run in
parallel on threads. Each runs the same programs on the same inputs as it
would one after another, so the results are the same bits
(``tests/test_smoothing.py``); so do the chains of a NUTS posterior. Tracing
a program runs NumPyro's effect handlers, whose stack is one global list:
a call that may trace holds :data:`TRACE_LOCK` (:func:`call_traced_once`), so
that no two threads trace at once.
"""

from __future__ import annotations

import numbers
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor, wait

__all__ = [
    "Cancelled",
    "TRACE_LOCK",
    "available_cores",
    "call_traced_once",
    "check_n_jobs",
    "resolve_n_jobs",
    "run_in_threads",
]

#: Held by a call that may trace a jitted program of a NumPyro model: tracing runs
#: NumPyro's effect handlers, whose stack is one global list, so two threads must
#: not trace at once. Later calls of a traced program run without it.
TRACE_LOCK = threading.RLock()
#: The argument signatures each jitted program has been called with (so traced).
_TRACED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Cancelled(Exception):
    """Raised in a task whose batch was given up (another task failed, or Ctrl-C)."""


def call_traced_once(function, signature, *args):
    """``function(*args)``; its first call with ``signature`` (it traces) holds the lock.

    ``signature`` stands for the arguments' shapes and dtypes (a call with new
    ones traces again).
    """
    seen = _TRACED.get(function)
    if seen is not None and signature in seen:
        return function(*args)
    with TRACE_LOCK:
        result = function(*args)
        _TRACED.setdefault(function, set()).add(signature)
    return result


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity call
        return os.cpu_count() or 1


def check_n_jobs(n_jobs) -> None:
    """Raise a ``ValueError`` unless ``n_jobs`` is None or a nonzero integer."""
    if n_jobs is None:
        return
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(
            "n_jobs must be None (one thread), a positive integer or a negative one (-1: "
            f"every CPU core, -2: all but one); got {n_jobs!r}."
        )


def resolve_n_jobs(n_jobs) -> int:
    """Threads for ``n_jobs`` as scikit-learn reads it: None is 1, -1 every core, -2 all but one."""
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return max(1, available_cores() + 1 + int(n_jobs))
    return int(n_jobs)


def run_in_threads(task, items, threads: int) -> list:
    """``[task(item, cancel) for item in items]`` on up to ``threads`` threads, in order.

    ``cancel`` is None when the items run one after another, else a
    :class:`threading.Event`, set when the batch is given up: a task raised,
    or the caller was interrupted (Ctrl-C). A running task should then stop at
    its next chance by raising :class:`Cancelled`; tasks not started are not
    run. Returns once every started task has ended; a task's exception is
    raised here (the first in the items' order, :class:`Cancelled` aside).
    """
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        return [task(item, None) for item in items]
    cancel = threading.Event()
    pool = ThreadPoolExecutor(min(threads, len(items)), thread_name_prefix="bayes_prsn")
    futures = []

    def give_up_on_failure(future) -> None:
        if not future.cancelled() and future.exception() is not None:
            cancel.set()
            for other in futures:
                other.cancel()  # those not started

    try:
        for item in items:
            futures.append(pool.submit(task, item, cancel))
            futures[-1].add_done_callback(give_up_on_failure)
        wait(futures)
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    failures = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
    real = [error for error in failures if not isinstance(error, Cancelled)]
    if real or failures:
        raise (real or failures)[0]
    return [future.result() for future in futures]
