"""Which ``IsSuccess: false`` answers to a read mean "busy, ask again" (CONTRACT.md, envelope).

A supplier like this one answers HTTP 200 with ``IsSuccess: false`` when it is overloaded
(``Code`` 500, "系统繁忙", "请稍后再试"). Such an answer to a read is retried like a 5xx; any
other refusal stays permanent. The rule is configuration (``SUPPLIER_TRANSIENT_CODES``,
``SUPPLIER_TRANSIENT_MESSAGES``) because a real supplier may use other codes and words.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CODES = "500-"
DEFAULT_MESSAGES = "繁忙,稍后,超时,busy,timeout"

CodeRange = tuple[int, int | None]


def parse_codes(text: str) -> tuple[CodeRange, ...]:
    """``"500-"`` (500 and up), ``"429"``, ``"500-599"``, comma-separated; raises ValueError."""
    ranges: list[CodeRange] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            first = int(low)
            last = (int(high) if high.strip() else None) if dash else first
        except ValueError:
            raise ValueError(f"bad code range {part!r}") from None
        if last is not None and last < first:
            raise ValueError(f"bad code range {part!r}")
        ranges.append((first, last))
    return tuple(ranges)


def parse_fragments(text: str) -> tuple[str, ...]:
    """Comma-separated message fragments, matched case-insensitively."""
    return tuple(p.strip().lower() for p in text.split(",") if p.strip())


@dataclass(frozen=True)
class TransientRule:
    """Codes and message fragments that mark a refusal as transient."""

    codes: tuple[CodeRange, ...] = parse_codes(DEFAULT_CODES)
    fragments: tuple[str, ...] = parse_fragments(DEFAULT_MESSAGES)

    @classmethod
    def from_text(cls, codes: str, messages: str) -> TransientRule:
        return cls(parse_codes(codes), parse_fragments(messages))

    def is_transient(self, code: int | None, message: str) -> bool:
        """Whether a read refused with this Code and Message is worth asking again."""
        if code is not None:
            for first, last in self.codes:
                if code >= first and (last is None or code <= last):
                    return True
        lowered = message.lower()
        return any(fragment in lowered for fragment in self.fragments)
