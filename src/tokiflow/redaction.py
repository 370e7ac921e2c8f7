"""Secret redaction for captured job output: tokens, keys, passwords in URLs, private keys, JWTs.

Pure functions over text (no I/O, no state), used by the job wrapper before output leaves the
machine and by the server before output is stored. Each rule finds the *secret part* of a match
(a URL password keeps its user and host, `password=` keeps the key); overlapping finds are
merged, so a secret caught by two rules is replaced once and counted once.

Extra patterns (per organisation) are regular expressions: the whole match is replaced, or only
the group named `secret` when the pattern has one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

REDACTED = "[REDACTED]"

_TOKEN = r"[A-Za-z0-9_\-]"
_B64 = r"[A-Za-z0-9+/]"
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class _Rule:
    """A pattern, the group holding the secret (0: the whole match; "assign": key=value), and
    literal needles: when none occurs in the text the pattern is not run at all, which keeps
    ordinary output cheap. A `folded` rule is written in lower case and runs on an ASCII
    lower-cased copy of the text (same length, so spans carry over): much faster than re.I."""

    pattern: re.Pattern[str]
    group: int | str
    needles: tuple[str, ...]
    folded: bool = False


def _rule(pattern: str, needles: str, group: int | str = 0, *, folded: bool = False) -> _Rule:
    return _Rule(re.compile(pattern), group, tuple(needles.split()), folded)


_RULES: tuple[_Rule, ...] = (
    # AWS access key ids (long-term AKIA, temporary ASIA, and the rarer prefixes).
    _rule(
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}"
        r"(?![A-Z0-9])",
        "AKIA ASIA ABIA ACCA AGPA AIDA AROA AIPA ANPA ANVA",
    ),
    # AWS secret access keys, recognised by the name they are given (40 base64 characters).
    _rule(
        r"(?:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key)[\"']?\s*[:=]\s*"
        rf"[\"']?(?P<secret>{_B64}{{40}})(?![A-Za-z0-9+/])",
        "secret",
        "secret",
        folded=True,
    ),
    # Google API keys, OAuth client secrets and access tokens. (Service-account private keys
    # are PEM blocks inside JSON, handled with the other private keys.)
    _rule(rf"(?<!{_TOKEN})AIza{_TOKEN}{{35}}(?!{_TOKEN})", "AIza"),
    _rule(rf"(?<!{_TOKEN})GOCSPX-{_TOKEN}{{28}}(?!{_TOKEN})", "GOCSPX-"),
    _rule(rf"(?<!{_TOKEN})ya29\.{_TOKEN}{{20,}}", "ya29."),
    # Azure storage / Service Bus connection strings and SAS signatures.
    _rule(
        r"(?:AccountKey|SharedAccessKey|SharedAccessSignature)=(?P<secret>[^;\s\"']{8,})",
        "AccountKey= SharedAccessKey= SharedAccessSignature=",
        "secret",
    ),
    _rule(r"[?&]sig=(?P<secret>[A-Za-z0-9%+/=]{20,})", "sig=", "secret"),
    # GitHub tokens: classic (ghp_ gho_ ghu_ ghs_ ghr_) and fine-grained (github_pat_).
    _rule(
        r"(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,255}(?![A-Za-z0-9_])",
        "ghp_ gho_ ghu_ ghs_ ghr_",
    ),
    _rule(r"(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{22,255}", "github_pat_"),
    # GitLab personal, deploy, runner, trigger and other tokens.
    _rule(
        rf"(?<!{_TOKEN})gl(?:pat|dt|rt|ptt|cbt|oas|soat|ft|imt)-{_TOKEN}{{20,}}",
        "glpat- gldt- glrt- glptt- glcbt- gloas- glsoat- glft- glimt-",
    ),
    # Slack tokens and webhook URLs (the host and /services/ stay readable).
    _rule(r"(?<![A-Za-z0-9])xox[abprse]-[A-Za-z0-9-]{10,}", "xox"),
    _rule(
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9_/\-]{8,})",
        "hooks.slack.com/",
        "secret",
    ),
    # Stripe-style live keys: unmistakable prefixes.
    _rule(r"(?<![A-Za-z0-9])(?:sk|rk)_live_[A-Za-z0-9]{16,}", "_live_"),
    # HTTP Authorization headers (any scheme) and bare bearer tokens.
    _rule(
        r"\bauthorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token|digest)\s+"
        r"(?P<secret>[^\s\"',;]+)",
        "authorization",
        "secret",
        folded=True,
    ),
    _rule(r"\bBearer\s+(?P<secret>[A-Za-z0-9._~+/\-]{16,}=*)", "Bearer", "secret"),
    # scheme://user:PASSWORD@host (user and host stay).
    _rule(
        r"\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s:/?#@\"'<>]*:(?P<secret>[^\s@/\"'<>]+)@"
        r"(?=[A-Za-z0-9\[])",
        "://",
        "secret",
    ),
    # JSON Web Tokens: base64url header "{"..., payload "{"..., signature.
    _rule(
        r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*", "eyJ"
    ),
    # password=..., "secret": "...", GITHUB_TOKEN=..., api_key: ... (the value runs to the first
    # space, quote, comma, semicolon or ampersand; a quoted value to its closing quote). The key
    # only has to *end* in one of these words, so DB_PASSWORD and csrftoken count, while
    # max_tokens and password_reset do not.
    _rule(
        r"(?:password|passwd|secret|token|api[_\-]?key|access[_\-]?key|auth[_\-]?key|"
        r"private[_\-]?key)[\"']?[ \t]*[:=][ \t]*"
        r"(?:\"(?P<dq>[^\"\n]{1,500})\"|'(?P<sq>[^'\n]{1,500})'|"
        r"(?P<bare>(?![\"'])[^\s\"'&,;]{1,500}))",
        "passw secret token key",
        "assign",
        folded=True,
    ),
)

_PEM_BEGIN = re.compile(r"-----BEGIN (?P<kind>(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----")
_PEM_END = re.compile(r"-----END (?P<kind>(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----")
# A line of a PEM body, for a key whose BEGIN line was cut off (output is kept as a tail).
_PEM_LINE = re.compile(r"^[A-Za-z0-9+/=]{16,}$|^[A-Za-z-]+: .*$")
# Values of `key=value` that are placeholders or shell variables, not secrets.
_NOT_A_VALUE = re.compile(
    r"^(?:\*+|x+|\.\.\.|<[^>]*>|\[REDACTED\]|null|none|true|false|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)$",
    re.I,
)


def redact(text: str, extra_patterns: Sequence[str] = ()) -> tuple[str, int]:
    """The text with every secret found replaced by `[REDACTED]`, and how many were replaced.

    Raises ValueError when an extra pattern is not a valid regular expression.
    """
    extra = [_compile_extra(p) for p in extra_patterns]
    spans = sorted(_spans(text, extra))
    if not spans:
        return text, 0
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[str] = []
    pos = 0
    for start, end in merged:
        out.append(text[pos:start])
        out.append(REDACTED)
        pos = end
    out.append(text[pos:])
    return "".join(out), len(merged)


def redact_bytes(data: bytes, extra_patterns: Sequence[str] = ()) -> tuple[bytes, int]:
    """`redact` for raw output: bytes that are not UTF-8 pass through unchanged."""
    text = data.decode("utf-8", "surrogateescape")
    cleaned, count = redact(text, extra_patterns)
    if count == 0:
        return data, 0
    return cleaned.encode("utf-8", "surrogateescape"), count


def check_patterns(patterns: Sequence[str]) -> None:
    """Raise ValueError naming the first pattern that cannot be used (for forms and APIs)."""
    for pattern in patterns:
        _compile_extra(pattern)


@lru_cache(maxsize=512)
def _compile_extra(pattern: str) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("invalid redaction pattern: it is empty")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid redaction pattern {pattern!r}: {exc}") from None
    if compiled.fullmatch("") is not None:
        raise ValueError(
            f"invalid redaction pattern {pattern!r}: it matches empty text, so it would match "
            "everywhere"
        )
    return compiled


def _spans(text: str, extra: Sequence[re.Pattern[str]]) -> Iterator[tuple[int, int]]:
    yield from _pem_spans(text)
    folded = text.translate(_LOWER)
    for rule in _RULES:
        subject = folded if rule.folded else text
        if not any(needle in subject for needle in rule.needles):
            continue
        for m in rule.pattern.finditer(subject):
            if rule.group == "assign":
                name = next(g for g in ("dq", "sq", "bare") if m.group(g) is not None)
                if _NOT_A_VALUE.match(text[m.start(name) : m.end(name)]) or _in_path(
                    folded, m.start()
                ):
                    continue
                yield m.span(name)
            else:
                yield m.span(rule.group)
    for pattern in extra:
        group = "secret" if "secret" in pattern.groupindex else 0
        for m in pattern.finditer(text):
            start, end = m.span(group)
            if end > start >= 0:
                yield start, end


def _in_path(text: str, pos: int) -> bool:
    """Whether the key word at `pos` is part of a file path ("/etc/passwd: not found")."""
    stop = max(pos - 200, 0)
    while pos > stop and (text[pos - 1].isalnum() or text[pos - 1] in "_-."):
        pos -= 1
    return pos > 0 and text[pos - 1] in "/\\"


def _pem_spans(text: str) -> Iterator[tuple[int, int]]:
    """Whole private-key blocks; a block cut at either end is redacted up to the cut."""
    if "PRIVATE KEY" not in text:
        return
    blocks: list[tuple[int, int]] = []
    for begin in _PEM_BEGIN.finditer(text):
        if blocks and begin.start() < blocks[-1][1]:
            continue
        end = _PEM_END.search(text, begin.end())
        blocks.append((begin.start(), end.end() if end else len(text)))
    yield from blocks
    for end in _PEM_END.finditer(text):
        if not any(start <= end.start() < stop for start, stop in blocks):
            yield _orphan_start(text, end.start()), end.end()


def _orphan_start(text: str, end_pos: int) -> int:
    """Where a key body that lost its BEGIN line starts: walk back over base64-looking lines."""
    start = text.rfind("\n", 0, end_pos) + 1
    # The END marker may follow key material on the same line (escaped "\n" in JSON).
    start = _line_start_of_escaped(text, start, end_pos)
    while start > 0:
        prev = text.rfind("\n", 0, start - 1) + 1
        line = text[prev : start - 1].rstrip("\r")
        if not line or not _PEM_LINE.match(line):
            break
        start = prev
    return start


def _line_start_of_escaped(text: str, start: int, end_pos: int) -> int:
    first = max(start, end_pos - 16384)  # a key is a few KB; bound the search
    match = re.search(rf"(?:{_B64}|=|\\n)+$", text[first:end_pos])
    if match and "\\n" in match.group(0):
        return first + match.start()
    return start
