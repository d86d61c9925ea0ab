"""Inputs spelled the way the Docker provider reads them back, so a refresh shows no diff.

The tables are upstream's own (terraform-provider-docker `helpers_test.go`, Go's `time` package):
the provider's Go code cannot run here, so its formatting is pinned by its published cases.
"""

from __future__ import annotations

import pytest

from swarm.provider_readback import cpus_input, go_duration, nano_cpus, seconds_input


@pytest.mark.parametrize("value, text", [
    (0, "0"), (1_000_000_000, "1.0"), (1_500_000_000, "1.5"), (2_000_000_000, "2.0"), (2_250_000_000, "2.25"),
    (250_000_000, "0.25"), (500_000_000, "0.5"), (4_000_000_000, "4.0"),
    # the nine-zeros test upstream: 10 CPUs have ten zeros, so the trailing ones are trimmed to "10."
    (10_000_000_000, "10."), (50_000_000, "0.1"),
])
def test_nano_cpus_are_written_as_the_provider_reads_them(value: int, text: str) -> None:
    assert nano_cpus(value) == text


def test_negative_nano_cpus_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        nano_cpus(-1)


@pytest.mark.parametrize("nanoseconds, text", [
    (0, "0s"), (500, "500ns"), (1_000, "1µs"), (2_500_000, "2.5ms"), (1_500_000_000, "1.5s"),
    (30_000_000_000, "30s"), (61_000_000_000, "1m1s"), (90_000_000_000, "1m30s"),
    (7_200_000_000_000, "2h0m0s"), (3_723_500_000_000, "1h2m3.5s"),
])
def test_durations_are_written_the_way_go_prints_them(nanoseconds: int, text: str) -> None:
    assert go_duration(nanoseconds) == text


def test_whole_cpus_and_minutes_get_the_read_back_spelling() -> None:
    assert (cpus_input(1.0), cpus_input(0.25), seconds_input(60), seconds_input(900)) == ("1.0", "0.25", "1m0s",
                                                                                         "15m0s")
