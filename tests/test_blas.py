"""numpy's OpenBLAS held to one thread inside the batch pipeline: found, set, restored, nested, fork-reset."""

from __future__ import annotations

import threading

import pytest

from eyesdk import blas

pytestmark = pytest.mark.skipif(not blas.available(), reason="numpy's OpenBLAS was not found here")


@pytest.fixture(autouse=True)
def two_threads():
    """Every test starts from 2 OpenBLAS threads, so "one inside, the old count after" cannot hold by accident
    (a 1-CPU runner or OPENBLAS_NUM_THREADS=1 would otherwise start at 1)."""
    get, set_ = blas._functions()
    old = get()
    set_(2)
    assert blas.threads() == 2
    yield
    set_(old)


def test_single_threaded_sets_one_and_restores() -> None:
    before = blas.threads()
    with blas.single_threaded():
        assert blas.threads() == 1
        with blas.single_threaded():  # nested (or a second pipeline at once): still one, not restored early
            assert blas.threads() == 1
        assert blas.threads() == 1
    assert blas.threads() == before


def test_the_last_of_overlapping_pipelines_restores() -> None:
    before = blas.threads()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with blas.single_threaded():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(10)
    with blas.single_threaded():
        pass
    assert blas.threads() == 1  # the other thread's block is still open
    release.set()
    thread.join(10)
    assert blas.threads() == before


def test_an_error_inside_still_restores() -> None:
    before = blas.threads()
    with pytest.raises(KeyError), blas.single_threaded():
        raise KeyError("x")
    assert blas.threads() == before


def test_a_forked_child_starts_with_no_pipeline_running() -> None:
    before = blas.threads()
    with blas.single_threaded():
        blas._after_fork_in_child()  # what os.register_at_fork runs in a child forked inside this block
        assert blas.threads() == before and blas._users == 0
        blas._users = 1  # the parent's own block continues (the hook only runs in children)
    assert blas.threads() == before
