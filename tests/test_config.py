"""Configs: TOML values land in typed fields, overrides are typed, mistakes name what is allowed."""

import dataclasses
import tomllib
from pathlib import Path

import pytest

from vidiff.config import (ConfigError, DataConfig, OptimConfig, SampleConfig, TrainConfig, from_dict,
                           load_config, parse_override, to_dict)
from vidiff.errors import VidiffError

SHAPES_S = Path(__file__).resolve().parents[1] / "configs" / "shapes-s.toml"


@pytest.fixture(scope="module")
def cfg():
    return load_config(SHAPES_S)


def test_file_values(cfg):
    assert isinstance(cfg, TrainConfig)
    raw = tomllib.loads(SHAPES_S.read_text())
    for key, value in raw.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                assert getattr(getattr(cfg, key), sub) == v, f"{key}.{sub}"
        else:
            assert getattr(cfg, key) == value, key
    assert cfg.out_dir == "runs/shapes-s" and cfg.model.channels == [32, 64, 128, 192]
    assert cfg.optim.lr == 5e-4 and cfg.optim.steps == 3000 and cfg.sample.sampler == "dpmpp_2m"
    # Keys the file leaves out keep their defaults.
    assert cfg.optim.weight_decay == OptimConfig().weight_decay and cfg.seed == TrainConfig().seed


def test_no_file_gives_defaults():
    assert load_config() == TrainConfig()


def test_overrides_apply_with_types():
    cfg = load_config(SHAPES_S, ["optim.lr=1e-3", "model.channels=[16,32]", "out_dir=runs/x",
                                 "sample.sampler=ddim", "optim.steps=500", "optim.bf16=true",
                                 "data.holdout=[['red','circle','right']]", "optim.grad_clip=2"])
    assert cfg.optim.lr == 1e-3 and type(cfg.optim.lr) is float
    assert cfg.model.channels == [16, 32]
    assert cfg.out_dir == "runs/x" and cfg.sample.sampler == "ddim"
    assert cfg.optim.steps == 500 and type(cfg.optim.steps) is int
    assert cfg.optim.bf16 is True
    assert cfg.data.holdout == [["red", "circle", "right"]]
    assert cfg.optim.grad_clip == 2.0 and type(cfg.optim.grad_clip) is float
    assert cfg.optim.batch_size == 8                               # untouched file value survives


def test_an_optional_number_takes_a_number_or_null():
    """`float | None` fields (sample.guidance_with_frames): a number is coerced, null (JSON) stays None."""
    assert load_config(SHAPES_S, ["sample.guidance_with_frames=2"]).sample.guidance_with_frames == 2.0
    assert from_dict(SampleConfig, {"guidance_with_frames": None}).guidance_with_frames is None
    assert to_dict(SampleConfig())["guidance_with_frames"] is None
    with pytest.raises(ConfigError, match="sample.guidance_with_frames must be a number"):
        load_config(SHAPES_S, ["sample.guidance_with_frames=high"])


@pytest.mark.parametrize("text,keys,value", [
    ("optim.lr=3e-4", ["optim", "lr"], 3e-4), ("out_dir=runs/x", ["out_dir"], "runs/x"),
    ("sample.sampler=ddim", ["sample", "sampler"], "ddim"), ("seed = 7", ["seed"], 7),
    ("text_encoder=a=b", ["text_encoder"], "a=b"), ("model.channels=[1, 2]", ["model", "channels"], [1, 2]),
])
def test_parse_override(text, keys, value):
    assert parse_override(text) == (keys, value)


def test_override_needs_equals():
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_override("optim.lr")


@pytest.mark.parametrize("override,allowed", [
    ("optim.learning_rate=1", OptimConfig), ("sample.foo=1", SampleConfig), ("bogus=1", TrainConfig),
    ("data.sizes=64", DataConfig),
])
def test_unknown_key_names_allowed(override, allowed):
    with pytest.raises(ConfigError, match="unknown config key") as e:
        load_config(SHAPES_S, [override])
    assert override.split("=")[0] in str(e.value)
    assert all(f.name in str(e.value) for f in dataclasses.fields(allowed))


def test_bad_literal_lists_choices():
    with pytest.raises(ConfigError, match="sample.sampler") as e:
        load_config(SHAPES_S, ["sample.sampler=foo"])
    for choice in ("ddim", "ddpm", "dpmpp_2m", "euler", "heun"):
        assert choice in str(e.value)
    assert "'foo'" in str(e.value)
    with pytest.raises(ConfigError, match="cosine"):
        load_config(overrides=["diffusion.schedule=quadratic"])


@pytest.mark.parametrize("override", [
    "optim.lr=abc", "optim.bf16=3", "optim.bf16=1", "optim.steps=1.5", "optim.steps=true",
    "optim.lr=[1]", "model.channels=16", "data.holdout=red", "optim=3", "optim.lr='1e-3'",
])
def test_wrong_types_raise(override):
    with pytest.raises(ConfigError):
        load_config(SHAPES_S, [override])


@pytest.mark.parametrize("override", ["out_dir.x=1", "optim.lr.x=1", "optim.lr.x.y=1"])
def test_override_into_a_value_raises(override):
    with pytest.raises(ConfigError, match="not a table"):
        load_config(SHAPES_S, [override])


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize("name,content", [
    ("bad.toml", b"[optim\nlr = 1"), ("bad.toml", b"lr = = 2"), ("bad.toml", b"\xff\xfe lr = 1"),
    ("bad.json", b"{"),
])
def test_malformed_file(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(tmp_path / name)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_errors_are_user_facing():
    assert issubclass(ConfigError, VidiffError) and issubclass(ConfigError, ValueError)


def test_round_trip(cfg):
    d = to_dict(cfg)
    assert isinstance(d["optim"], dict) and d["optim"]["lr"] == 5e-4
    assert from_dict(TrainConfig, d) == cfg
    tweaked = load_config(SHAPES_S, ["data.holdout=[['red','circle','right']]", "sample.sampler=heun"])
    assert from_dict(TrainConfig, to_dict(tweaked)) == tweaked != cfg


def test_json_config(tmp_path, cfg):
    import json

    (tmp_path / "c.json").write_text(json.dumps(to_dict(cfg)))
    assert load_config(tmp_path / "c.json") == cfg


@pytest.mark.parametrize("entry", ["[['red','circel','right']]", "[['red','circle']]", "[['circle','red','right']]"])
def test_a_misspelt_holdout_is_refused(entry):
    """A name outside the shapes world would hold out nothing, silently."""
    from vidiff.data.sources import video_source

    with pytest.raises(ConfigError, match="data.holdout"):
        video_source(load_config(SHAPES_S, [f"data.holdout={entry}"]).data)
    assert video_source(load_config(SHAPES_S, ["data.holdout=[['red','circle','right']]"]).data).exclude == \
        {("red", "circle", "right")}
