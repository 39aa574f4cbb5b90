"""Time of the text checks on inputs made to make them backtrack (by hand, not in the suite).

    .venv/bin/python benchmarks/text_checks_bench.py [--sizes 100000,1000000] [--reference]

For each input and size it prints the seconds `validate_post` takes on each network (what
`POST …/schedule`, `…/submit` and each CSV row run per account), and the seconds a `Text`
field takes to refuse the value. Every figure should stay a fraction of a second at 100,000
characters and grow linearly with the size. `--reference` also times the patterns these checks
replaced, at small sizes (they grow quadratically or worse: do not give them large ones).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import unicodedata
from pathlib import Path
from types import SimpleNamespace

import regex

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.services import content_rules  # noqa: E402

NETWORKS = ("x", "mastodon", "bluesky", "linkedin", "instagram")


def inputs(n: int) -> dict[str, str]:
    """Each about `n` characters long."""
    return {
        "url, dot run, a": "http://a" + "." * n + "a",
        "http:// run, <": "http://" * (n // 7) + "<",
        "spaced urls": "http://a " * (n // 9),
        "www. run": "www." * (n // 4),
        "nested brackets": "[(" * (n // 4) + "http://x" + ")]" * (n // 4) + "a",
        "punctuation, <": "http://x" + ".,;:!?')]" * (n // 9) + '"<',
        "@aaa…a.": "@" + "a" * n + ".",
        "@a.a.….@b": "@" + "a." * (n // 2) + "@bc",
        "@a@@a@…": "@a@" * (n // 3),
        "flags": "\U0001f1eb\U0001f1f7" * (n // 2),
        "marks out of order": "a" + "\u0301" * (n // 2) + "\u0316" * (n // 2),
        "emoji": "\U0001f600" * n,
        "ZWJ families": "\U0001f468\u200d\U0001f469\u200d\U0001f467" * (n // 5),
        "#…@.@.": "#" * (n // 2) + "@." * (n // 4),
    }


def time_of(func, *args) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def bench(sizes: list[int]) -> None:
    from marshmallow import ValidationError

    from app.fields import Text

    accounts = [SimpleNamespace(id=n, network=n, settings={}) for n in NETWORKS]
    print(f"{'input':22} {'size':>9} " + " ".join(f"{n:>9}" for n in NETWORKS))
    for size in sizes:
        for name, text in inputs(size).items():
            times = [time_of(content_rules.validate_post, text, [], a) for a in accounts]
            print(f"{name:22} {len(text):>9} " + " ".join(f"{t:9.3f}" for t in times))
    field = Text(min_len=1, max_len=200)
    for size in sizes:
        for name, value in {"a…a\\x01": "a" * size + "\x01", "␠…␠": " " * size}.items():

            def refuse(value: str = value) -> None:
                with contextlib.suppress(ValidationError):
                    field.deserialize(value)

            print(f"Text field {name:11} {size:>9} {time_of(refuse):9.3f}")


# The patterns the checks replaced, for --reference only.
_OLD_URL = regex.compile(r"(?:https?://|(?<![\w.@/])www\.)[^\s<>\"]+?(?=[.,;:!?'\")\]]*(?:\s|$))")
_OLD_MENTION = regex.compile(
    r"(?<![\w/@])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)@[\w.-]+[\w]+", regex.IGNORECASE
)


def reference(sizes: list[int]) -> None:
    print("\nthe replaced patterns (seconds):")
    cases = {
        "URL, dot run, a": lambda n: len(_OLD_URL.findall("http://a" + "." * n + "a")),
        "URL, http:// run, <": lambda n: len(_OLD_URL.findall("http://" * (n // 7) + "<")),
        "mention, @aaa…a.": lambda n: _OLD_MENTION.sub(r"@\1", "@" + "a" * n + "."),
        "graphemes, flags": lambda n: len(regex.findall(r"\X", "\U0001f1eb" * n)),
        "NFC, marks": lambda n: unicodedata.normalize(
            "NFC", "a" + "\u0301" * (n // 2) + "\u0316" * (n // 2)
        ),
    }
    for name, run in cases.items():
        print(f"{name:22} " + " ".join(f"{n}: {time_of(run, n):.3f}" for n in sizes))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--reference", action="store_true")
    args = parser.parse_args()
    bench([int(s) for s in args.sizes.split(",")])
    if args.reference:
        reference([500, 1000, 2000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
