"""Request ids the model server makes up are what ``uuid.uuid4().hex`` gave before: 32 lowercase hex
digits of a version-4, RFC 4122 UUID, and never the same twice."""

from __future__ import annotations

import re
import uuid

import httpx

from shipyard.serving.http import fresh_id

HEX32 = re.compile(r"[0-9a-f]{32}")


def _is_uuid4_hex(text: str) -> bool:
    parsed = uuid.UUID(hex=text)
    return (
        bool(HEX32.fullmatch(text))
        and parsed.hex == text
        and parsed.version == 4
        and parsed.variant == uuid.RFC_4122
    )


def test_fresh_ids_are_uuid4_hex_and_distinct() -> None:
    ids = [fresh_id() for _ in range(5_000)]
    assert all(_is_uuid4_hex(i) for i in ids)
    assert len(set(ids)) == len(ids)
    # every other bit varies: the random part is not stuck anywhere
    ored = anded = int(ids[0], 16)
    for i in ids[1:]:
        ored, anded = ored | int(i, 16), anded & int(i, 16)
    fixed = (0xF000 << 64) | (0xC000 << 48)
    assert ored | fixed == (1 << 128) - 1
    assert anded & ~fixed == 0


def test_an_answer_without_an_incoming_id_carries_a_fresh_one(http: httpx.Client) -> None:
    answers = [
        http.get("/health"),
        http.post("/predict", content=b"{", headers={"Content-Type": "application/json"}),
    ]
    ids = [a.headers["x-request-id"] for a in answers]
    assert all(_is_uuid4_hex(i) for i in ids)
    assert ids[0] != ids[1]
