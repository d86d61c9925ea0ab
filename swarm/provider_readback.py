"""How the Docker provider writes a container's settings back into state, and so how to send them.

pulumi-docker wraps kreuzwerker/terraform-provider-docker. Its create ends with a read
(`resourceDockerContainerRead`) that fills the state from `docker inspect`, and every later
preview diffs the program's inputs against that state. An input spelled differently from the
read-back is a diff on every `pulumi up` and a failed nightly `preview --expect-no-changes`;
for `cpus`, which forces a new container, it is a replacement every time. So the program sends
exactly the read's spelling (upstream `helpers.go` and Go's `time.Duration.String`):

* `cpus`: `nanoInt64ToDecimalString(NanoCPUs)`: 1 CPU reads back "1.0", 1.5 "1.5", 0.25 "0.25";
* healthcheck durations: Go durations: 60 s reads back "1m0s", 900 s "15m0s".

Adoption (`swarm.adopt`) writes an inspected container's values with the same functions.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

NANO = 1_000_000_000


def nano_cpus(value: int) -> str:
    """The provider's `nanoInt64ToDecimalString`, quirks included: 1000000000 -> '1.0',
    2250000000 -> '2.25', 0 -> '0' (it counts the zeros of the nine-decimal form: exactly nine
    means a 'round' value, printed with one decimal, rounded half away from zero)."""
    if value < 0:
        raise ValueError(f"NanoCPUs cannot be negative: {value}")
    if value == 0:
        return "0"
    nine = f"{value // NANO}.{value % NANO:09d}"
    if nine.count("0") == 9:
        return f"{(Decimal(value) / NANO).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):f}"
    return nine.rstrip("0")


def cpus_input(cpus: float) -> str:
    """The `cpus` input for a limit of `cpus` CPUs, as the provider reads it back."""
    return nano_cpus(round(cpus * NANO))


def go_duration(nanoseconds: int) -> str:
    """Go's `time.Duration.String()`, which the provider uses for healthcheck durations."""
    if nanoseconds == 0:
        return "0s"
    sign, ns = ("-", -nanoseconds) if nanoseconds < 0 else ("", nanoseconds)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(Decimal(ns) / 1_000)}µs"
    if ns < NANO:
        return f"{sign}{_trim(Decimal(ns) / 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600 * NANO)
    minutes, rest = divmod(rest, 60 * NANO)
    seconds = _trim(Decimal(rest) / NANO)
    text = f"{hours}h{minutes}m" if hours else (f"{minutes}m" if minutes else "")
    return f"{sign}{text}{seconds}s"


def seconds_input(seconds: int) -> str:
    """A healthcheck duration input of `seconds`, as the provider reads it back."""
    return go_duration(seconds * NANO)


def _trim(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
