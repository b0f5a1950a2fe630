"""`livematte serve`: the WebRTC demo server assembled from a config, running until Ctrl-C."""

from __future__ import annotations

import logging

from aiohttp import web

from livematte.config import Config, ConfigError
from livematte.webrtc.engines import PeerEngines
from livematte.webrtc.server import create_app

log = logging.getLogger(__name__)


def servable(cfg: Config) -> Config:
    """The config as the server uses it: WebRTC video is opaque, and a page gets one video (no per-person sinks)."""
    if cfg.effects.background.kind == "transparent":
        raise ConfigError("effects.background.kind=transparent cannot be sent over WebRTC (video has no alpha "
                          "channel): choose original, blur, color, image or video")
    if cfg.effects.isolate:
        log.warning("effects.isolate is ignored by `livematte serve`: each page gets one video")
        cfg = cfg.model_copy(update={"effects": cfg.effects.model_copy(update={"isolate": []})})
    return cfg


def serve(cfg: Config) -> None:
    cfg = servable(cfg)
    logging.getLogger("aioice").setLevel(logging.WARNING)  # every ICE candidate pair at INFO drowns the peers' lines
    engines = PeerEngines(cfg.engine)
    log.info(engines.description)
    url = f"http://{cfg.serve.host}:{cfg.serve.port}"
    try:
        web.run_app(create_app(cfg, engines), host=cfg.serve.host, port=cfg.serve.port, access_log=None,
                    print=lambda _: log.info("serving the demo page at %s (Ctrl-C stops)", url))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {url}: {exc.strerror or exc}; stop what uses that port or choose "
                          "another with --set serve.port=N") from None
    finally:
        engines.close()
