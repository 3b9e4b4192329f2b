"""Stop requests (SIGTERM, Ctrl-C) honoured at a batch edge while Keras trains.

A signal handler that raises at once raises at whatever Python instruction the main
thread runs next: inside Keras' or TensorFlow's own bookkeeping between two steps,
or in an object's deleter, while ``tf.data`` threads keep loading images. Inside a
Keras loop the command's handler therefore only records the request (:func:`defer`),
and the callback :func:`batch_edge_callback` raises :class:`Stopped` at the next batch
or epoch edge, where Keras' state is whole; the epoch in progress is abandoned as
before. A request that arrives after the last batch is raised when the loop returns.
Outside a loop (reading data, computing frozen features, evaluating) the handler
raises at once, as before.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any


class Stopped(KeyboardInterrupt):
    """The process was asked to stop by ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _Requests:
    """How many marked Keras loops are running (they may nest), and a pending request."""

    depth = 0
    pending: int | None = None


def defer(signum: int) -> bool:
    """Record a stop request if a Keras loop runs (True), else leave it to the caller."""
    if _Requests.depth == 0:
        return False
    _Requests.pending = signum
    return True


def raise_pending() -> None:
    """Raise :class:`Stopped` for a recorded request (once)."""
    signum, _Requests.pending = _Requests.pending, None
    if signum is not None:
        raise Stopped(signum)


@contextlib.contextmanager
def keras_loop() -> Iterator[None]:
    """Mark a Keras loop, during which stop requests wait for a batch edge."""
    _Requests.depth += 1
    try:
        yield
    except BaseException:
        _Requests.depth -= 1
        if _Requests.depth == 0:
            _Requests.pending = None  # another error ends the loop first: it is reported
        raise
    _Requests.depth -= 1
    if _Requests.depth == 0:
        raise_pending()  # arrived after the last batch edge


def batch_edge_callback() -> Any:
    """A Keras callback raising a recorded stop request at every batch and epoch edge of fit."""
    import keras

    class BatchEdgeStop(keras.callbacks.Callback):  # type: ignore[misc]
        def _check(self, *_: Any, **__: Any) -> None:
            raise_pending()

        on_epoch_begin = _check
        on_train_batch_begin = _check
        on_train_batch_end = _check
        on_test_batch_begin = _check
        on_test_batch_end = _check  # fit's validation

    return BatchEdgeStop()
