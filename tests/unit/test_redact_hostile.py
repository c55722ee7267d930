"""Hostile input for the redactor: linear time, never raising, idempotent, pieces that join up.

Timing here is a regression guard against quadratic patterns, not a performance claim (those are in
benchmarks/bench_redact.py): 4x the input must take less than 8x the CPU time plus a constant.
"""

from __future__ import annotations

import random
import time

import pytest

import runbook_kit.redact as redact_module
from runbook_kit.redact import MASK, Redactor

R = Redactor(["my-known-secret-value", "pw1", "testing"])

# Each unit, repeated, once made a pattern scan the rest of the text from every repetition.
ADVERSARIAL_UNITS = [
    "a-", "=", "\"'", "{'a': ", "{'data': {", "x://", "a://b:c", "://u:", "-----BEGIN RSA PRIVATE KEY-----\n",
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: x\n\n", "eyJ-", "eyJabcdefgh.", "password=",
    "password:'", "token ", "api_key ", "\x1b[0m", "&quot;", "<a ", "<td>", "<table><tr><th>password</th>",
    "kind: Secret\ndata:\n  a: ", "{'kind': 'Secret', 'data': {", "bearer ", "LS0tLS1CRUdJTi",
    "Authorization: ", "A" * 39 + "/", "a: ", "--token ", "-", " ", "password\n", "| password ",
    "password  user\n", "&#x27;", "\\", "password=\x1b[0m&quot;a-", "tokentoken", "password:'\\'", "ghp_",
    "github_pat_", "xoxb-", "FwoGZXIvYXdz", "AKIA", "k_live_", "hooks.slack.com/services/", "\\n",
    "password: [", "secret: {", "Cookie: a\\", "İ", "key=value ", "aaaa" * 10 + " ",
    "sk_live_" + "a" * 30 + "_",
]


def _best_of(fn, runs=2):
    """CPU seconds of the fastest run: other processes on the machine do not count."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _repeat(unit, size):
    return (unit * (size // len(unit) + 1))[:size]


@pytest.mark.parametrize("unit", ADVERSARIAL_UNITS, ids=lambda u: repr(u)[:30])
def test_redaction_time_is_linear_in_adversarial_input(unit):
    small, large = _repeat(unit, 50_000), _repeat(unit, 200_000)
    t_small = _best_of(lambda: R.text(small))
    t_large = _best_of(lambda: R.text(large))
    assert t_large < 8 * t_small + 0.1, (t_small, t_large)
    assert t_large < 5.0


def test_200_kb_of_mixed_hostile_text_is_fast():
    rng = random.Random(7)
    text = "".join(rng.choice(ADVERSARIAL_UNITS) * rng.randrange(1, 200) for _ in range(2000))[:200_000]
    assert _best_of(lambda: R.text(text), runs=1) < 5.0


def test_quadratic_lines_of_the_previous_redactor():
    # a line of 'a-' x 10,000 took ~50 s with the previous key=value pattern
    line = "a-" * 10_000
    assert _best_of(lambda: R.text(line), runs=1) < 1.0


def test_deep_and_wide_structures():
    deep: object = "password=hunter22"
    for _ in range(200):
        deep = {"x": [deep]}
    out = R.value(deep)
    for _ in range(200):
        out = out["x"][0]
    assert out == f"password={MASK}"
    wide = {"outputs": [{"text": f"line {i} token={i:08d}"} for i in range(5_000)]}
    assert _best_of(lambda: R.value(wide), runs=1) < 2.0


# --- never raising ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    [
        "İstanbul password=İİİİ token: ßß", "\ud800 password=\udfff", "\x00\x01 key=\x00", "ﬃ secret=ﬃﬃﬃﬃ",
        "&#99999999; &#x110000; &bogus; &;", "\x1b[" * 100, "\x1b]8;;http://x\x07link\x1b]8;;\x07", "<" * 500,
        "-----END RSA PRIVATE KEY-----" * 3, "-----BEGIN RSA PRIVATE KEY-----", "LS0tLS1CRUdJTi" + "!" * 30,
        "LS0tLS1CRUdJTiAAAAAAAAAAAAAAAAAAAAAAAA=====", "|" * 300 + "\npassword|" + "|" * 299, "\r\n" * 100,
        "<table>" + "<tr><th colspan='999'>password</th></tr><tr><td>x</td></tr>" * 50,
    ],
)
def test_strange_text_never_raises(text):
    out = R.text(text)
    assert isinstance(out, str) and R.text(out) == out


@pytest.mark.parametrize("obj", [None, 5, 2.5, b"password=hunter22", True, {1, 2}, object])
def test_non_strings_are_returned_as_they_are(obj):
    assert R.text(obj) is obj  # type: ignore[arg-type]
    assert R.value(obj) is obj


def test_odd_known_values_and_parameters():
    r = Redactor([MASK, "REDACTED", "***", "", "   ", "None", None, 5, "x"])  # type: ignore[list-item]
    assert r.text(MASK) == MASK and r.text(f"a {MASK} b") == f"a {MASK} b"
    r = Redactor.from_environment({"API_TOKEN": "t"},
                                  extra={"tokens": [object(), None, 3.5, {"a": ["tok-12345678"]}]})
    assert r.text("tok-12345678 and 3.5") == f"{MASK} and 3.5"


def test_a_failing_detector_fails_closed(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(redact_module, "_find_shapes", broken)
    assert R.text("nothing secret here") == MASK
    assert R.pieces(["a", "b", ""]) == [MASK, MASK, ""]


# --- idempotence and pieces ---------------------------------------------------------------------------

FRAGMENTS = [
    "password=hunter22", " ", "\n", "postgresql://u:p4ss@db/x", "AKIAIOSFODNN7EXAMPLE", "\x1b[31m", "\x1b[0m",
    "&quot;", "api_key: ", "'quoted value'", "Authorization: Bearer abcdef0123456789",
    "my-known-secret-value", "{'data': {'a': 'YWRtaW4='}, 'kind': 'Secret'}",
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n", "testing", "    user  password\n0  alice  hunter22\n",
    "<td>", "</td>", "ghp_abcdefghijklmnop1234", "pw1", "=", ":", "tokens: ['a1', 'b2']", "\\n",
    "Cookie: sid=1", "kind: Secret\ndata:\n  k: dg==\n", "NextToken", "Key",
]


def test_redaction_is_idempotent_on_random_mixtures():
    rng = random.Random(11)
    for _ in range(400):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randrange(1, 12)))
        once = R.text(text)
        assert R.text(once) == once, text


def test_pieces_always_join_to_the_redacted_whole():
    rng = random.Random(5)
    for _ in range(300):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randrange(1, 10)))
        cuts = sorted(rng.randrange(len(text) + 1) for _ in range(rng.randrange(1, 5)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        out = R.pieces(pieces)
        assert len(out) == len(pieces) and "".join(out) == R.text(text), pieces


@pytest.mark.parametrize(
    "text",
    [
        # the Cookie value swallows a '{' and a '[': afterwards "secret: {...}" reads as a flat mapping
        "secret: {FATAL: failed Cookie: a\\{'Contents': [{'Key': 'x'}],\n 'NextToken': 'abc'}",
        # masking the known value makes the access key id stand alone
        "my-known-secret-valueAKIAIOSFODNN7EXAMPLE",
        # ... also behind a colour code
        "my-known-secret-value\x1b[0mghp_abcdefghijklmnop1234",
    ],
)
def test_a_masked_text_is_read_again_until_it_does_not_change(text):
    once = R.text(text)
    assert R.text(once) == once
