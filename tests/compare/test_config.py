"""The comparison's configuration: strategy specs and the --sampler options."""
import pytest


def test_sampler_options_parsed_and_checked():
    from adamask.cli import parse_sampler_options

    opts = parse_sampler_options(["variant=attention", "width=24", "token_pool=1x2x2", "checkpoint=true"])
    assert opts == {"variant": "attention", "width": 24, "token_pool": (1, 2, 2), "checkpoint": True}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_sampler_options(["colour=red"])
    with pytest.raises(ValueError, match="width must be int"):
        parse_sampler_options(["width=wide"])
