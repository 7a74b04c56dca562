"""Independent fits on threads: order, errors, cancellation and the ``n_jobs`` setting."""

import threading
import time

import pytest

from bayes_prsn import PersonalizedRegression
from bayes_prsn.parallel import (
    Cancelled,
    available_cores,
    check_n_jobs,
    resolve_n_jobs,
    run_in_threads,
)


def test_results_come_in_the_items_order():
    def task(item, cancel):
        time.sleep(0.01 * (5 - item))  # the last items finish first
        return item * item

    assert run_in_threads(task, range(5), threads=3) == [0, 1, 4, 9, 16]
    assert run_in_threads(task, range(5), threads=1) == [0, 1, 4, 9, 16]


def test_one_thread_runs_in_the_callers_thread_without_a_cancel_event():
    seen = run_in_threads(lambda item, cancel: (threading.current_thread(), cancel), [1, 2], 1)
    assert seen == [(threading.current_thread(), None)] * 2


def test_the_first_failure_in_order_is_raised_and_the_others_are_cancelled():
    started, stopped = threading.Event(), []

    def task(item, cancel):
        if item == 0:
            # Runs until cancelled, as a validation fit checks between chunks.
            started.set()
            while not cancel.wait(0.01):
                pass
            stopped.append(item)
            raise Cancelled
        started.wait()
        raise ValueError(f"item {item} failed")

    with pytest.raises(ValueError, match="item 1 failed"):
        run_in_threads(task, [0, 1, 2, 3], threads=2)
    assert stopped == [0], "the running task saw the cancel event and stopped"


def test_n_jobs_as_scikit_learn_reads_it():
    cores = available_cores()
    assert resolve_n_jobs(None) == 1
    assert resolve_n_jobs(3) == 3
    assert resolve_n_jobs(-1) == cores
    assert resolve_n_jobs(-2) == max(1, cores - 1)
    assert resolve_n_jobs(-10 * cores) == 1
    for bad in (0, 1.5, True, "all"):
        with pytest.raises(ValueError, match="n_jobs must be None"):
            check_n_jobs(bad)


def test_a_bad_n_jobs_is_named_before_fitting(toy):
    with pytest.raises(ValueError, match="n_jobs must be None .*got 0"):
        PersonalizedRegression(n_jobs=0).fit(toy.X, toy.y, covariates=toy.covariates)
