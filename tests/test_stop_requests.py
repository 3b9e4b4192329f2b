"""Stop requests wait for a batch edge while Keras trains, and never outlive their loop."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from dermkit.training import stop_requests
from dermkit.training.stop_requests import Stopped


def test_outside_a_loop_the_handler_is_told_to_raise_at_once() -> None:
    assert stop_requests.defer(signal.SIGTERM) is False
    stop_requests.raise_pending()  # nothing recorded: no-op


def test_a_request_inside_a_loop_is_raised_at_the_loops_end_once() -> None:
    with pytest.raises(Stopped) as stopped, stop_requests.keras_loop():  # noqa: SIM117
        with stop_requests.keras_loop():  # fit evaluating inside fit
            assert stop_requests.defer(signal.SIGINT) is True
        # the inner loop's end is no edge of the outer one: nothing raised yet
    assert stopped.value.exit_code == 128 + signal.SIGINT
    with stop_requests.keras_loop():
        pass  # the request was raised once, not kept


def test_another_error_ending_the_loop_drops_the_request() -> None:
    with pytest.raises(OSError), stop_requests.keras_loop():
        stop_requests.defer(signal.SIGTERM)
        raise OSError("disk full")
    with stop_requests.keras_loop():
        pass  # a later loop in the same process is not stopped by the old request


def test_the_callback_raises_at_the_next_batch_edge_of_fit() -> None:
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    seen: list[int] = []

    class RequestAtSecondBatch(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_begin(self, batch: int, logs: object = None) -> None:
            seen.append(batch)
            if batch == 1:
                stop_requests.defer(signal.SIGTERM)

    x, y = np.zeros((8, 2), "float32"), np.zeros((8, 1), "float32")
    callbacks = [stop_requests.batch_edge_callback(), RequestAtSecondBatch()]
    with pytest.raises(Stopped), stop_requests.keras_loop():
        model.fit(x, y, batch_size=2, epochs=3, callbacks=callbacks, verbose=0)
    assert seen == [0, 1]  # stopped after batch 1's step, before batch 2 began
