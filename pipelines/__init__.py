"""Assembled pipelines: each wires sources, engines, tracking, effects and sinks for one job."""
