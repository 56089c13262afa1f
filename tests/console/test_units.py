"""console/units.py: memory sizes and CPU shares read once, as the Docker CLI reads them; and the two callers
(build options, deployments) keeping their own messages and minimums."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from builds.services import options
from console import units
from fleet import services as fleet

MIB = 1024**2


@pytest.mark.parametrize(("text", "expected"), [
    ("512m", 512 * MIB),
    ("1g", 1024 * MIB),
    ("1.5g", 1536 * MIB),
    ("300000k", 300000 * 1024),
    ("64mb", 64 * MIB),
    ("64 MB", 64 * MIB),
    (" 2G ", 2048 * MIB),
    ("7340032", 7340032),
    ("1024b", 1024),
    ("1t", 1024**4),
    (7340032, 7340032),
])
def test_it_reads_memory_sizes_as_the_docker_cli_does(text, expected):
    assert units.parse_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "", "-1m", "1.g", ".5g", "1x", "1gg", "1 g b", "0x10", "1e3",
                                  "\u0661m", "1m\n2", "9" * 100, True, -5])
def test_it_refuses_what_is_no_memory_size(text):
    with pytest.raises(units.UnitError):
        units.parse_memory(text)


@pytest.mark.parametrize(("value", "expected"), [("0.5", 0.5), ("2", 2.0), (1, 1.0), (0.25, 0.25), (" 1.5 ", 1.5)])
def test_it_reads_cpu_shares(value, expected):
    assert units.parse_cpus(value) == expected


@pytest.mark.parametrize("value", ["half", "nan", "inf", "-1", True, None, [], "1" * 100])
def test_it_refuses_what_is_no_cpu_share(value):
    with pytest.raises(units.UnitError):
        units.parse_cpus(value)


def test_build_options_keep_their_messages_and_minimum():
    assert options.parse_memory("1.5g") == 1536 * MIB
    assert options.parse_memory("") is None
    with pytest.raises(options.OptionError, match="is not a memory size") as caught:
        options.parse_memory("lots")
    assert caught.value.field == "memory_limit"
    with pytest.raises(options.OptionError, match="at least 6m"):
        options.parse_memory("1k")


def test_deployments_keep_their_messages_and_minimum_and_now_take_decimals():
    assert fleet.clean_memory("64m") == 64 * MIB
    assert fleet.clean_memory(64 * MIB) == 64 * MIB
    # The Docker CLI takes `--memory 1.5g`; deployments refused it before the units were read in one place.
    assert fleet.clean_memory("1.5g") == 1536 * MIB
    assert fleet.clean_memory(None) is None
    for value, message in [("lots", "Give bytes or a size like 64m or 1g."),
                           ("1m", "The engine needs at least 6m for a container."),
                           (True, "Give bytes or a size like 64m.")]:
        with pytest.raises(ValidationError) as caught:
            fleet.clean_memory(value)
        assert caught.value.message_dict == {"memory_limit": [message]}


def test_deployments_keep_their_cpu_messages_and_range():
    assert fleet.clean_cpus("0.5") == 0.5
    assert fleet.clean_cpus(0) is None
    for value, message in [("half", "cpus is a number, like 0.5."), ("nan", "cpus is a number, like 0.5."),
                           (True, "cpus is a number, like 0.5."), ("2000", "cpus is between 0.01 and 1024."),
                           ("0.001", "cpus is between 0.01 and 1024.")]:
        with pytest.raises(ValidationError) as caught:
            fleet.clean_cpus(value)
        assert caught.value.message_dict == {"cpus": [message]}
