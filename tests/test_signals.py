"""Stop signals: the first asks for an orderly stop without raising where the main thread happens to be;
the next raises KeyboardInterrupt as Ctrl-C does (livematte/signals.py, pipelines/live.py)."""

import os
import signal
import threading
import time

import pytest

import pipelines.live
from livematte.signals import first_stop_calls, stop_as_ctrl_c
from pipelines.live import LivePipeline
from tests.test_pipeline import config


def flowing(pipeline: LivePipeline, monkeypatch) -> threading.Event:
    """Set once the run's output loop has handed a frame to the sinks (its stop handler is in place)."""
    event = threading.Event()
    write = pipeline._write

    def counted(*args):
        write(*args)
        event.set()

    monkeypatch.setattr(pipeline, "_write", counted)
    return event


@pytest.fixture
def as_the_cli():
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as `livematte` sets them; pytest's own handlers after."""
    before = {stop: signal.getsignal(stop) for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    stop_as_ctrl_c()
    yield
    for stop, handler in before.items():
        signal.signal(stop, handler)


def test_the_first_stop_signal_is_a_request_and_the_second_raises(as_the_cli):
    calls = []
    with first_stop_calls(lambda: calls.append(1)) as stop_signal:
        assert not stop_signal.came
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # a signal runs its handler at the main thread's next bytecode
        assert calls == [1] and stop_signal.came
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(1)
    assert calls == [1]
    assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler, "the command's own handler is back"


def test_a_stop_signal_ends_the_run_with_its_report(tmp_path, monkeypatch, as_the_cli):
    """Sent once frames flow: run() returns its report, marked as stopped early, every output closed."""
    pipeline = LivePipeline(config(tmp_path, "source.frames=null", "source.realtime=true"))
    frames = flowing(pipeline, monkeypatch)
    threading.Thread(target=lambda: frames.wait(60) and os.kill(os.getpid(), signal.SIGTERM), daemon=True).start()
    report = pipeline.run(show_progress=False)
    assert report.interrupted and report.frames > 0
    assert report.outputs == [tmp_path / "out.mp4"]


def test_a_second_stop_signal_leaves_a_stuck_worker_behind(tmp_path, monkeypatch, as_the_cli):
    """The first signal's orderly stop waits for each worker's frame; a second one during that wait ends the
    run at once (KeyboardInterrupt), not after the worker's bound."""
    monkeypatch.setattr(pipelines.live, "WORKER_STOP_S", 60)
    pipeline = LivePipeline(config(tmp_path, "source.frames=null", "source.realtime=true"))
    frames, stuck, release = flowing(pipeline, monkeypatch), threading.Event(), threading.Event()
    render = pipeline.processor.render

    def stuck_render(tracked):
        if frames.is_set():
            stuck.set()
            release.wait(60)
        return render(tracked)

    def signal_twice():
        stuck.wait(60)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)  # the orderly stop is waiting for the render worker
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(pipeline.processor, "render", stuck_render)
    threading.Thread(target=signal_twice, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            pipeline.run(show_progress=False)
        assert time.monotonic() - started < 30
    finally:
        release.set()
