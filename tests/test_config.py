from pathlib import Path

import pytest

from livematte.config import (
    DEFAULT_CONFIG,
    ConfigError,
    FileSourceConfig,
    SyntheticSourceConfig,
    load_config,
)

# train_*.yaml are `livematte train` presets, checked in test_train_config.py
CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")
                 if not p.name.startswith("train_"))


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_preset_is_valid(path):
    load_config(path)


def test_default_is_the_embedded_synthetic_job():
    cfg = load_config()
    assert isinstance(cfg.source, SyntheticSourceConfig)
    assert [s.kind for s in cfg.sinks] == ["file"]
    assert load_config(DEFAULT_CONFIG) == cfg


def test_overrides_parse_yaml_values_and_reach_nested_lists():
    cfg = load_config(overrides=["source.people=6", "source.realtime=true", "sinks.0.path=x/y.mp4",
                                 "run.max_frames=null"])
    assert cfg.source.people == 6 and cfg.source.realtime is True
    assert cfg.sinks[0].path == Path("x/y.mp4")
    assert cfg.run.max_frames is None


def test_switching_kind_replaces_the_section():
    cfg = load_config(overrides=["source.kind=file", "source.path=a.mp4"])
    assert cfg.source == FileSourceConfig(path=Path("a.mp4"))


def test_unknown_key_names_file_key_and_allowed_keys(tmp_path):
    path = write(tmp_path, "source:\n  kind: synthetic\n  colour: red\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "source.colour: unknown key" in message
    assert "allowed here: kind, width, height, fps, people" in message


def test_unknown_key_in_a_sink_list_entry(tmp_path):
    path = write(tmp_path, "sinks:\n  - kind: png\n    folder: out\n")
    with pytest.raises(ConfigError, match=r"sinks\.0\.folder: unknown key; allowed here: kind, path"):
        load_config(path)


def test_unknown_key_of_one_person_names_what_a_person_allows(tmp_path):
    path = write(tmp_path, "effects:\n  people:\n    '1': {effect: tint, color: '#ff00ff'}\n")
    with pytest.raises(ConfigError, match=r"effects\.people\.1\.color: unknown key; allowed here: effect, tint, "
                                          "strength, background"):
        load_config(path)


def test_unknown_top_level_section(tmp_path):
    with pytest.raises(ConfigError, match="nope: unknown key; allowed here: source, sinks, streams, engine, "
                                          "tracking, temporal, effects, run, serve, cluster"):
        load_config(write(tmp_path, "nope: {}\n"))


def test_wrong_type_and_range(tmp_path):
    with pytest.raises(ConfigError, match=r"source\.fps: .*greater than 0"):
        load_config(write(tmp_path, "source:\n  kind: synthetic\n  fps: -3\n"))
    with pytest.raises(ConfigError, match=r"source\.width: .*valid integer"):
        load_config(write(tmp_path, "source:\n  kind: synthetic\n  width: wide\n"))


def test_unknown_kind_lists_the_kinds(tmp_path):
    with pytest.raises(ConfigError, match="'synthetic', 'webcam', 'file', 'rtsp', 'images'"):
        load_config(write(tmp_path, "source:\n  kind: ndi\n"))


def test_malformed_yaml_reports_the_line(tmp_path):
    path = write(tmp_path, "source:\n  kind: synthetic\n   people: [1, 2\n")
    with pytest.raises(ConfigError, match=rf"{path} line \d+ column \d+: not valid YAML"):
        load_config(path)


def test_a_binary_file_is_not_a_config(tmp_path):
    path = tmp_path / "camera.bin"
    path.write_bytes(b"\x00\xff\xfe\x89PNG\r\n")
    with pytest.raises(ConfigError, match=rf"config file {path} is not UTF-8 text \(byte 1\)"):
        load_config(path)


def test_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("item, message", [
    ("people", "expected key.path=value"),
    ("sinks.4.path=a", "sinks has 1 entries; use an index 0..0"),
    ("run.log_level.x=1", "run.log_level is a value, not a section"),
])
def test_bad_override_syntax(item, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[item])


def test_rtsp_url_must_be_rtsp():
    with pytest.raises(ConfigError, match=r"source\.url"):
        load_config(overrides=["source.kind=rtsp", "source.url=http://camera/x"])


def test_empty_file_means_defaults(tmp_path):
    cfg = load_config(write(tmp_path, ""))
    assert isinstance(cfg.source, SyntheticSourceConfig)


def test_kind_values_are_names_even_when_yaml_would_read_them_otherwise():
    assert load_config(overrides=["sinks.0.kind=null"]).sinks[0].kind == "null"


def test_hex_colours_survive_the_command_line():
    assert load_config(overrides=["effects.default.tint=#ff0000"]).effects.default.tint == "#ff0000"


def test_input_files_in_a_preset_are_relative_to_the_preset(tmp_path):
    preset = tmp_path / "presets" / "p.yaml"
    preset.parent.mkdir()
    preset.write_text("source:\n  kind: file\n  path: clips/a.mp4\nsinks:\n  - kind: file\n    path: out/b.mp4\n"
                      "effects:\n  people:\n    3: {background: bg/beach.png}\n")
    cfg = load_config(preset)
    assert cfg.source.path == preset.parent / "clips" / "a.mp4"
    assert cfg.effects.people[3].background == preset.parent / "bg" / "beach.png"
    assert cfg.sinks[0].path == Path("out/b.mp4"), "outputs stay relative to the current directory"
    assert load_config(preset, ["source.path=c.mp4"]).source.path == Path("c.mp4"), "--set paths are the shell's"


def test_words_yaml_1_1_would_turn_into_booleans_stay_words(tmp_path):
    assert load_config(overrides=["temporal.mode=off"]).temporal.mode == "off"
    assert load_config(write(tmp_path, "temporal:\n  mode: off\n")).temporal.mode == "off"
    assert load_config(overrides=["source.realtime=true"]).source.realtime is True
