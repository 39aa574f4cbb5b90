"""Text checks cost time linear in the text, on inputs made to make them backtrack.

Each check runs in a subprocess with a generous time bound: the scans these inputs defeated
took from half a minute to hours on them, the linear ones take well under a second (see
`benchmarks/text_checks_bench.py` for figures). The bound is what fails, never a timing
measured against a threshold, and the counts are checked too: being fast must not change them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOUND_SECONDS = 30
N = 100_000
FLAG = "\U0001f1eb\U0001f1f7"

# name: (text, {network: expected count}); every text is 100,000 characters or more.
COUNTS = {
    # One URL of 100,000 dots counts 23 where URLs are shortened.
    "url with a dot run": (
        "http://a" + "." * N + "a",
        {"x": 23, "mastodon": 23, "bluesky": N + 9, "linkedin": N + 9},
    ),
    # The dots before a space are punctuation after the URL, not part of it.
    "url then a dot run": (
        "http://a" + "." * N + " b",
        {"x": 23 + N + 2, "mastodon": 23 + N + 2, "linkedin": 8 + N + 2},
    ),
    # A run that ends at "<" is no URL, however many schemes it holds.
    "schemes then <": ("http://" * 15_000 + "<", {"x": 105_001, "mastodon": 105_001}),
    "spaced urls": ("http://a " * 12_500, {"x": 12_500 * 24, "mastodon": 12_500 * 24}),
    "www run": ("www." * 30_000, {"x": 24, "mastodon": 120_000}),
    "nested brackets": (
        "[(" * 25_000 + "http://x" + ")]" * 25_000 + "a",
        {"x": 50_000 + 23, "mastodon": 50_000 + 23},
    ),
    "trailing punctuation then <": (
        "http://x" + ".,;:!?')]" * 12_000 + '"<',
        {"x": 8 + 108_000 + 2, "mastodon": 8 + 108_000 + 2},
    ),
    "no mention": ("@" + "a" * N + ".", {"mastodon": N + 2, "x": N + 2}),
    "long remote mention": ("@" + "a" * N + "@example.org", {"mastodon": N + 1}),
    "mention-like run": ("@" + "a." * 50_000 + "@bc", {"mastodon": 100_004}),
    "at signs": ("@a@" * 40_000, {"mastodon": 120_000}),
    "flags": (FLAG * 50_000, {"bluesky": 50_000, "mastodon": 50_000, "x": 100_000}),
    # NFC puts the marks in canonical order (all graves below first), then composes a + acute.
    "combining marks out of order": (
        "a" + "\u0301\u0316" * 50_000,
        {"x": N, "bluesky": 1, "mastodon": 1, "linkedin": N + 1},
    ),
    "tibetan vowels": ("\u0f73" * N, {"x": 2 * N, "linkedin": N}),
    "emoji": ("\U0001f600" * N, {"x": 2 * N, "bluesky": N}),
    "hashtags and mentions": ("#" * N + "@." * 50_000, {"instagram": 2 * N}),
}

_COUNT_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    from types import SimpleNamespace

    # The module alone (with the text counting it imports): the app's other imports would take
    # longer than the checks.
    spec = importlib.util.spec_from_file_location("content_rules", sys.argv[1])
    rules = importlib.util.module_from_spec(spec)
    sys.modules["content_rules"] = rules
    spec.loader.exec_module(rules)
    case = json.load(sys.stdin)
    counts, messages = {}, {}
    for network in case["networks"]:
        account = SimpleNamespace(id=network, network=network, settings={})
        counts[network] = rules.text_length(case["text"], account)
        messages[network] = [v.message for v in rules.validate_post(case["text"], [], account)]
    print(json.dumps({"counts": counts, "messages": messages}))
    """
)


def _run(script: str, *args: str, stdin: str = "") -> str:
    # `python -c` in the project's root: the app is importable from there.
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=BOUND_SECONDS,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {BOUND_SECONDS} s: the check is not linear")
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("name", COUNTS)
def test_adversarial_texts_are_counted_fast_and_right(name: str) -> None:
    text, expected = COUNTS[name]
    assert len(text) >= N
    case = {"text": text, "networks": sorted({*expected, "x", "mastodon", "bluesky"})}
    result = json.loads(
        _run(
            _COUNT_SCRIPT,
            str(ROOT / "app" / "services" / "content_rules.py"),
            stdin=json.dumps(case),
        )
    )
    assert {n: result["counts"][n] for n in expected} == expected
    if name == "hashtags and mentions":
        assert result["messages"]["instagram"] == [
            "Instagram allows at most 2200 characters; this text has 200000.",
            "Instagram allows at most 20 @-mentions; this text has 50000.",
            "Instagram: a post needs at least 1 media item(s).",
        ]


_FIELD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import marshmallow as ma
    from app.fields import Text

    # Every validator of a field runs, even after its length check failed: the pattern sees
    # the whole value, a megabyte or more.
    answers = {}
    for name, value in json.load(sys.stdin).items():
        for min_len in (0, 1):
            try:
                Text(min_len=min_len, max_len=200).deserialize(value)
                answers[f"{name}/{min_len}"] = "ok"
            except ma.ValidationError as exc:
                answers[f"{name}/{min_len}"] = exc.messages
    print(json.dumps(answers))
    """
)


def test_text_fields_check_long_values_fast() -> None:
    values = {
        "control at the end": "a" * 1_000_000 + "\x01",
        "spaces then control": " " * 1_000_000 + "\x01",
        "words then control": "a " * 500_000 + "\x01",
    }
    answers = json.loads(_run(_FIELD_SCRIPT, stdin=json.dumps(values)))
    for key, messages in answers.items():
        assert any("Control characters" in m for m in messages), key
        assert any("200" in m for m in messages), key


def test_upload_file_names_are_cleaned_fast() -> None:
    script = "from app.services.media import clean_filename; import sys; "
    script += "print(len(clean_filename(sys.stdin.read())))"
    assert _run(script, stdin="a" + "\u0301" * 500_000 + "\u0316" * 500_000) == "255\n"


_API_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from app import create_app

    job = json.load(sys.stdin)
    app = create_app(job["config"])
    client = app.test_client()
    headers = {"Authorization": "Bearer " + job["token"]}
    base = "/v1/brands/" + job["brand"]
    answers = {}
    for name, post_id in job["posts"].items():
        answer = client.post(
            f"{base}/posts/{post_id}/schedule", json={"at": job["at"]}, headers=headers
        )
        answers[name] = [answer.status_code, answer.get_json()]
    answer = client.post(
        f"{base}/posts/import",
        data=job["csv"].encode(),
        headers={**headers, "Content-Type": "text/csv"},
    )
    answers["import"] = [answer.status_code, answer.get_json()]
    print(json.dumps(answers))
    """
)


def test_schedule_and_csv_import_check_adversarial_texts_fast(
    app_config,
    make_agency,
    factory,
) -> None:
    """The same checks run per variant on schedule and per row and account on import."""
    import csv
    import io
    from datetime import UTC, datetime, timedelta

    owner = make_agency("Adversary", approval_mode="none")
    brand = owner.brands[0]
    x, mastodon = factory.account(owner, brand, "x"), factory.account(owner, brand, "mastodon")
    bluesky = factory.account(owner, brand, "bluesky")
    dots = "http://a" + "." * 69_990 + "a"  # one URL: 23 on X and Mastodon, too long on Bluesky
    schemes = "http://" * 9_000 + "<"  # no URL at all: 63,001 everywhere
    mention = "@" + "a" * 69_990 + "."
    flags = FLAG * 34_000
    posts = {
        "dots": factory.post(owner, brand, [x, mastodon], text=dots, status="approved"),
        "schemes": factory.post(owner, brand, [x, mastodon], text=schemes, status="approved"),
        "mention": factory.post(owner, brand, [mastodon], text=mention, status="approved"),
        "flags": factory.post(owner, brand, [bluesky, x], text=flags, status="approved"),
    }
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["text", "accounts"])
    for text in (dots, schemes, mention, flags):
        writer.writerow([text, f"{x} {mastodon} {bluesky}"])
    config = {k: v for k, v in app_config.items() if _json_safe(v)}
    job = {
        "config": config,
        "token": owner.token,
        "brand": brand,
        "posts": posts,
        "at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "csv": rows.getvalue(),
    }
    answers = json.loads(_run(_API_SCRIPT, stdin=json.dumps(job)))
    assert answers["dots"][0] == 200, answers["dots"]
    status, problem = answers["schemes"]
    assert status == 422
    assert "X allows at most 280 weighted characters" in problem["detail"]
    assert "this text has 63001" in problem["detail"]
    status, problem = answers["mention"]
    assert status == 422 and "this text has 69992" in problem["detail"]
    status, problem = answers["flags"]
    assert status == 422
    assert (
        "Bluesky allows at most 300 characters (grapheme clusters); this text has 34000"
        in (problem["detail"])
    )
    assert "this text has 68000" in problem["detail"]  # X: two per flag
    status, problem = answers["import"]
    assert status == 422
    messages = {key: " ".join(found) for key, found in problem["errors"].items()}
    assert "Bluesky" in messages["rows.2.text"] and "X allows" not in messages["rows.2.text"]
    assert "this text has 63001" in messages["rows.3.text"]
    assert "this text has 69992" in messages["rows.4.text"]
    assert "this text has 34000" in messages["rows.5.text"]


def _json_safe(value: object) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True
