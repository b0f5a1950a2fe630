"""`livematte run` on a Ray cluster (cluster.address set): the streams of one config spread over machines.

Each stream is a Ray actor running the same LivePipeline as `livematte run` in one process (its source,
tracking, fusion, effects and sinks on the actor's machine). A network engine is a Ray Serve
deployment (livematte/engine/served.py) of `cluster.replicas` replicas whose dynamic batching gathers
every stream's frames; the learned and keying engines follow each stream's people and run inside its
actor. An actor that dies (killed, its node lost) is started again and its stream resumes, writing
its files anew under a `_resumed_HHMMSS` name (the first part stays as it was written); a replica that
dies is replaced by Serve, and the frames it held are sent to another.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings

import ray
from ray import serve
from ray.exceptions import RayTaskError
from ray.serve.handle import DeploymentHandle
from ray.serve.schema import LoggingConfig

from livematte.config import (
    ClusterConfig,
    Config,
    FileSinkConfig,
    FileSourceConfig,
    ImageFolderSourceConfig,
    PngSinkConfig,
)
from livematte.engine.batching import GPU_BATCH
from livematte.engine.choose import open_engine
from livematte.engine.served import MattingModel, ServedEngine
from livematte.signals import stop_as_ctrl_c
from pipelines.live import LivePipeline, RunReport
from pipelines.streams import StreamsReport

log = logging.getLogger(__name__)
APP = "livematte"  # the Serve application's name in the cluster
WORKER = "livematte-stream-"  # + the stream's number: each stream's actor, as `ray list actors` shows it
NAMED_PATHS = (FileSourceConfig, ImageFolderSourceConfig, FileSinkConfig, PngSinkConfig)  # configs with a `path`


@ray.remote(max_restarts=-1, max_task_retries=-1, max_concurrency=2)  # run() and stop() at once
class StreamWorker:
    """One stream, on whichever machine Ray places it."""

    def __init__(self, cfg: Config, served: tuple[DeploymentHandle, str] | None):
        with warnings.catch_warnings():  # Ray's own use of its deprecated actor_id inside this property
            warnings.simplefilter("ignore", DeprecationWarning)
            restarted = ray.get_runtime_context().was_current_actor_reconstructed
        if restarted:
            cfg = resumed(cfg, time.strftime("%H%M%S"))
        logging.getLogger("ray.serve").setLevel(logging.WARNING)
        engine = None if served is None else (ServedEngine(served[0]), served[1])
        self._pipeline = LivePipeline(cfg, engine)

    def run(self) -> RunReport:
        return self._pipeline.run(show_progress=False)

    def stop(self) -> None:
        self._pipeline.stop()


def resumed(cfg: Config, stamp: str) -> Config:
    """The stream's config with its files renamed NAME_resumed_STAMP, so a restart never overwrites them."""
    def renamed(sink):
        if not isinstance(sink, (FileSinkConfig, PngSinkConfig)):
            return sink
        path = sink.path
        return sink.model_copy(update={"path": path.with_name(f"{path.stem}_resumed_{stamp}{path.suffix}")})

    return cfg.model_copy(update={"sinks": [renamed(s) for s in cfg.sinks]})


def on_this_machine(cfg: Config) -> Config:
    """Relative paths made absolute here: an actor's working folder is Ray's, not the command's."""
    def absolute(item):
        return item.model_copy(update={"path": item.path.resolve()}) if isinstance(item, NAMED_PATHS) else item

    return cfg.model_copy(update={
        "source": absolute(cfg.source), "sinks": [absolute(s) for s in cfg.sinks],
        "effects": cfg.effects.model_copy(update={"isolate_path": cfg.effects.isolate_path.resolve()})})


def run_on_cluster(cfg: Config) -> StreamsReport:
    """Every stream of `cfg` on the cluster until all have ended (or Ctrl-C, which stops them all)."""
    configs = [on_this_machine(s) for s in cfg.stream_configs()]
    # opened here once, so that a config mistake is one line here and not a replica's traceback
    engine, description = open_engine(configs[0].engine, configs[0].footage)
    network = not engine.per_stream
    del engine
    c = cfg.cluster
    join_cluster(c, cpus=len(configs) * c.cpus_per_stream + (c.replicas * c.cpus_per_replica if network else 0))
    try:
        served = None
        if network:
            description = f"{description}, served by Ray Serve ({c.replicas} replica{'s' * (c.replicas > 1)})"
            served = (serve_model(cfg), description)
        log.info("%d streams on the cluster; %s", len(configs), description)
        workers = [StreamWorker.options(name=f"{WORKER}{i}", num_cpus=c.cpus_per_stream).remote(s, served)
                   for i, s in enumerate(configs)]
        return _await(workers, description)
    finally:
        if network:
            serve.delete(APP)
        ray.shutdown()


def join_cluster(c: ClusterConfig, cpus: float) -> None:
    """Connect to the cluster, or start a local one with at least the CPUs the run reserves."""
    quiet = ray.LoggingConfig(log_level="WARNING")  # Ray's INFO lines would drown the streams' own
    level = logging.getLogger().level  # which that sets for this process too
    if c.address == "local":
        ray.init(num_cpus=max(os.cpu_count() or 1, math.ceil(cpus)), include_dashboard=False, logging_config=quiet)
    else:
        ray.init(address=c.address, logging_config=quiet)
    logging.getLogger().setLevel(level)
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    stop_as_ctrl_c()  # ray.init installed its own SIGTERM handler, which aborts without closing the streams


def serve_model(cfg: Config) -> DeploymentHandle:
    """The network's replicas, started; no HTTP or gRPC proxy: only the streams' actors call them."""
    c = cfg.cluster
    quiet = LoggingConfig(log_level="WARNING", enable_access_log=False)  # not a line per frame
    serve.start(proxy_location="Disabled", logging_config=quiet)
    most = cfg.engine.batch.max_batch or GPU_BATCH  # Serve warns where a replica could not hold a whole batch
    model = MattingModel.options(num_replicas=c.replicas, max_ongoing_requests=2 * most,
                                 ray_actor_options={"num_cpus": c.cpus_per_replica, "num_gpus": c.gpus_per_replica})
    return serve.run(model.bind(cfg.engine), name=APP, route_prefix=None, logging_config=quiet)


def _await(workers: list, description: str) -> StreamsReport:
    runs = [w.run.remote() for w in workers]
    interrupted = False
    try:
        reports = ray.get(runs)
    except KeyboardInterrupt:
        interrupted = True
        log.info("stopped by Ctrl-C; closing every stream's outputs")
        ray.get([w.stop.remote() for w in workers])
        reports = ray.get(runs)
    except RayTaskError as exc:  # one stream failed: the others stop, the run ends with its error
        ray.get([w.stop.remote() for w in workers])
        ray.wait(runs, num_returns=len(runs), timeout=60)
        raise exc.cause from None
    return StreamsReport(reports, description, {}, interrupted)
