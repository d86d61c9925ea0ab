"""How the Docker provider's create turns the program's string inputs into the engine's units
(kreuzwerker/terraform-provider-docker): `time.ParseDuration` for healthcheck durations and
`opts.ParseCPUs` for `cpus`. The tests pair these with swarm.provider_readback, the way back."""

from __future__ import annotations

import re
from decimal import Decimal

GO_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(\d+)s")


def parse_duration(text: str) -> int:
    """`time.ParseDuration` for the whole-second forms the program sends ("15s", "1m30s", "2h0m0s"), in ns."""
    match = GO_DURATION.fullmatch(text)
    assert match, text
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((hours * 60 + minutes) * 60 + seconds) * 1_000_000_000


def parse_cpus(text: str) -> int:
    """`opts.ParseCPUs`: a decimal number of CPUs in nano-CPUs."""
    return int(Decimal(text) * 1_000_000_000)
