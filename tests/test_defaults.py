"""One set of defaults: a settings object below the config (kernels, engines, tracking) that repeats a
config field's name must repeat its default too, so that code which builds one without the config behaves
as a run with the default preset does."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from pydantic import BaseModel

from kernels import FusionParams, Scene
from livematte.compositor import scene_for
from livematte.config import EffectsConfig, KeyingConfig, TemporalConfig, TrackingConfig
from livematte.engine.keying import KeyingSettings
from livematte.temporal import fusion_params
from livematte.tracking import Tracker


def defaults_of(target) -> dict:
    if dataclasses.is_dataclass(target):
        return {f.name: f.default for f in dataclasses.fields(target) if f.default is not dataclasses.MISSING}
    return {name: p.default for name, p in inspect.signature(target).parameters.items()
            if p.default is not inspect.Parameter.empty}


@pytest.mark.parametrize(("section", "target"), [(TemporalConfig, FusionParams), (KeyingConfig, KeyingSettings),
                                                 (TrackingConfig, Tracker)], ids=lambda x: x.__name__)
def test_settings_repeat_the_config_defaults(section: type[BaseModel], target):
    config = {name: field.default for name, field in section.model_fields.items()}
    shared = sorted(set(config) & set(defaults_of(target)))
    assert shared, "nothing in common: the pair is wrong"
    assert {k: defaults_of(target)[k] for k in shared} == {k: config[k] for k in shared}


def test_the_default_effects_make_the_default_scene():
    assert scene_for(EffectsConfig()) == Scene()


def test_settings_built_from_the_config_take_its_values():
    keying = KeyingConfig(mode="difference", key_colour="#20c040", plate_frames=4, scale=0.25, min_area=0.01)
    assert KeyingSettings.from_config(keying) == KeyingSettings(mode="difference", key_colour=(64, 192, 32),
                                                                plate_frames=4, scale=0.25, min_area=0.01)
    tracker = Tracker.from_config(TrackingConfig(enter_threshold=0.7, confirm_frames=3, max_people=5))
    assert (tracker.enter_threshold, tracker.confirm_frames, tracker.max_people) == (0.7, 3, 5)
    params = fusion_params(TemporalConfig(tau_y=5.0, cell=4, blend=0.5, motion=False, max_shift=8))
    assert (params.tau_y, params.cell, params.blend, params.motion, params.max_shift) == (5.0, 4, 0.5, False, 8)
