"""What decoding an attacker's frame costs, against a benign frame of the same size.

Run: ``python bench/decode.py [--quick] [--rounds N]``. For each frame shape
and size, decodes the frame (whole, with ``Codec.decode``, as a frame under
64 KiB is; and in steps, with ``Codec.decode_steps``, as the connection
decodes larger ones) and a benign frame of the same size (small dicts,
tuples, text and numbers), in the same round, and prints the medians over
the rounds: CPU seconds (process time), the ratio to the benign frame, peak
memory (tracemalloc) per input byte, the longest step of a stepped decode,
and whether the frame was refused (``DecodeError``).

The attacks are those of the hardening issue: a set of big integers that all
hash alike (``k * (2**61 - 1)``: quadratic to build before the hash check),
and a flood of empty maps (each one byte on the wire, a dict in memory). A
frame over the default 8 MiB ``max_frame_size`` never reaches the decoder;
``--lax`` decodes such frames too (the 16 MiB figure of the issue).
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import struct
import time
import tracemalloc
from collections.abc import Callable

import trio
from beamlet.cluster import Codec, DecodeError, encode

M = 2**61 - 1
EXT_SET = 2
KIB = 1024


def _array(count: int, items: bytes) -> bytes:
    return b"\xdd" + struct.pack(">I", count) + items


def colliding_set(size: int) -> bytes:
    """A set of big ints that all hash to 0, about ``size`` bytes."""
    items = [encode(k * M) for k in range(1, size // 12)]
    body = b"".join(items)
    while len(body) > size:
        body = body[: -len(items.pop())]
    return b"\xdd" + struct.pack(">I", len(items) + 1) + b"\xc7\x00" + bytes([EXT_SET]) + body


def empty_maps(size: int) -> bytes:
    """About ``size`` bytes of empty maps, in arrays of 64 Ki (one array of
    millions would be refused at once by ``max_array_len``)."""
    chunk = 64 * KIB
    inner = _array(chunk, b"\x80" * chunk)
    count = max(1, size // len(inner))
    return _array(count, inner * count)


def benign(size: int) -> bytes:
    item = encode({"user": "someone", "n": 123456, "tags": ("a", "b"), "score": 0.5})
    count = max(1, size // len(item))
    return _array(count, item * count)


def _whole(codec: Codec, data: bytes) -> tuple[bool, float]:
    try:
        codec.decode(data)
    except DecodeError:
        return True, 0.0
    return False, 0.0


def _steps(codec: Codec, data: bytes) -> tuple[bool, float]:
    decoding = codec.decode_steps(data)
    longest = 0.0
    try:
        while True:
            started = time.perf_counter()
            done = decoding.step()
            longest = max(longest, time.perf_counter() - started)
            if done:
                return False, longest
    except DecodeError:
        return True, max(longest, time.perf_counter() - started)


def _measure(fn: Callable[[], tuple[bool, float]]) -> tuple[float, int, bool, float]:
    """CPU seconds, peak bytes, refused, longest step (the peak from a second run)."""
    gc.collect()
    started = time.process_time()
    refused, longest = fn()
    cpu = time.process_time() - started
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return cpu, peak, refused, longest


def run(rounds: int, sizes: dict[str, list[int]], lax: bool) -> None:
    codec = Codec(max_size=1 << 26) if lax else Codec()
    stepped = hasattr(codec, "decode_steps")
    print(
        f"{'frame':<34}{'mode':<7}{'CPU s':>9}{'benign s':>10}{'ratio':>8}"
        f"{'B/byte':>9}{'longest step':>14}  refused"
    )
    for shape, make in (("colliding set", colliding_set), ("empty maps", empty_maps)):
        for size in sizes[shape]:
            data, reference = make(size), benign(size)
            modes: list[tuple[str, Callable[[Codec, bytes], tuple[bool, float]]]] = [
                ("whole", _whole)
            ]
            if stepped:
                modes.append(("steps", _steps))
            for mode, decoder in modes:
                cpus, bases, peaks, longest, refused = [], [], [], [], False
                for _ in range(rounds):
                    cpu, peak, refused, step = _measure(
                        lambda d=decoder, x=data: d(codec, x)  # type: ignore[misc]
                    )
                    base, _, _, _ = _measure(
                        lambda d=decoder, x=reference: d(codec, x)  # type: ignore[misc]
                    )
                    cpus.append(cpu)
                    bases.append(base)
                    peaks.append(peak / len(data))
                    longest.append(step)
                cpu, base = statistics.median(cpus), statistics.median(bases)
                step_text = (
                    f"{statistics.median(longest) * 1000:.1f} ms" if mode == "steps" else "-"
                )
                print(
                    f"{shape + f', {len(data) / KIB:,.0f} KiB':<34}{mode:<7}{cpu:>9.4f}"
                    f"{base:>10.4f}{cpu / base if base else float('nan'):>7.1f}x"
                    f"{statistics.median(peaks):>9.1f}{step_text:>14}  {'yes' if refused else 'no'}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small frames, one round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per figure (5)")
    parser.add_argument("--lax", action="store_true", help="decode frames over 8 MiB too")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 5)
    if args.quick:
        sizes = {"colliding set": [16 * KIB], "empty maps": [64 * KIB]}
    else:
        sizes = {
            "colliding set": [253 * KIB, 507 * KIB],
            "empty maps": [1024 * KIB, 8 * 1024 * KIB] + ([16 * 1024 * KIB] if args.lax else []),
        }
    print(
        f"Python {platform.python_version()}, trio {trio.__version__}, {platform.machine()}, "
        f"{rounds} round(s), medians"
    )
    run(rounds, sizes, args.lax)


if __name__ == "__main__":
    main()
