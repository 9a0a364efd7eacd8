"""The change feed: order, cursor, appends between reads, and late commits on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from models.catalog import Change
from tests.support import builders as b


def feed(client: FlaskClient, after: int, limit: int = 100) -> dict[str, Any]:
    response = client.get(f"/catalog/changes?after={after}&limit={limit}")
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json
    return body


def follow(client: FlaskClient, after: int, limit: int) -> tuple[list[int], int]:
    seqs: list[int] = []
    while True:
        body = feed(client, after, limit)
        seqs += [c["seq"] for c in body["changes"]]
        after = body["next_after"]
        if not body["has_more"]:
            return seqs, after


def test_feed_lists_changes_in_order_with_their_fields(
    client: FlaskClient, arrange: Session
) -> None:
    b.change(arrange, 7, "created", version=0, detail={"reason": "new"})
    b.change(arrange, 8, "prices", version=None)
    arrange.commit()

    body = feed(client, 0)
    assert [(c["product_id"], c["kind"], c["version"]) for c in body["changes"]] == [
        (7, "created", 0),
        (8, "prices", None),
    ]
    first = body["changes"][0]
    assert first["detail"] == {"reason": "new"}
    assert first["created_at"].endswith("Z")
    assert body["next_after"] == body["changes"][-1]["seq"]
    assert body["has_more"] is False


def test_following_the_cursor_across_a_sync_never_misses_or_repeats(
    client: FlaskClient, arrange: Session
) -> None:
    for product_id in range(5):
        b.change(arrange, product_id, "created", version=0)
    arrange.commit()

    seqs, cursor = follow(client, 0, limit=2)
    assert len(seqs) == 5
    assert feed(client, cursor)["changes"] == []
    assert feed(client, cursor)["next_after"] == cursor

    # A sync appends more changes between reads.
    for product_id in range(3):
        b.change(arrange, product_id, "updated", version=2)
    arrange.commit()
    more, cursor = follow(client, cursor, limit=2)
    b.change(arrange, 9, "deauthorized")
    arrange.commit()
    last, _ = follow(client, cursor, limit=2)

    everything = seqs + more + last
    stored = list(arrange.scalars(sa.select(Change.seq).order_by(Change.seq)))
    assert everything == stored
    assert len(stored) == 9


def test_limit_bounds_a_page_and_sets_has_more(client: FlaskClient, arrange: Session) -> None:
    for product_id in range(3):
        b.change(arrange, product_id)
    arrange.commit()

    page = feed(client, 0, limit=2)
    assert len(page["changes"]) == 2
    assert page["has_more"] is True
    rest = feed(client, page["next_after"], limit=2)
    assert len(rest["changes"]) == 1


@pytest.mark.parametrize(
    "query", ["?after=-1", "?after=x", "?limit=0", "?limit=5000", "?after=99999999999999999999"]
)
def test_bad_feed_parameters_are_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"/catalog/changes{query}")
    assert response.status_code == 400
    assert response.json["error"] == "bad_request"


# --- late commits (PostgreSQL only: SQLite serializes writers) --------------------------------


postgres_only = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@postgres_only
def test_a_change_committed_late_is_not_skipped(
    client: FlaskClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        first = b.change(session, 1).seq

    slow = session_factory()
    try:
        late_seq = b.change(slow, 2).seq  # drawn now, committed last
        with session_factory.begin() as session:
            after_seq = b.change(session, 3).seq
        assert first < late_seq < after_seq

        # The slow writer is in flight: the feed stops before its seq, so the cursor cannot
        # pass it.
        body = feed(client, 0)
        assert [c["seq"] for c in body["changes"]] == [first]
        assert body["next_after"] == first
        assert feed(client, first)["changes"] == []
        slow.commit()
    finally:
        slow.rollback()
        slow.close()
    body = feed(client, first)
    assert [c["seq"] for c in body["changes"]] == [late_seq, after_seq]


@postgres_only
def test_a_rolled_back_seq_is_passed_once_no_writer_is_in_flight(
    client: FlaskClient, session_factory: sessionmaker[Session]
) -> None:
    aborted = session_factory()
    hole = b.change(aborted, 1).seq
    aborted.rollback()
    aborted.close()
    with session_factory.begin() as session:
        kept = b.change(session, 2).seq

    assert kept == hole + 1
    assert [c["seq"] for c in feed(client, 0)["changes"]] == [kept]


@postgres_only
def test_a_hole_is_passed_after_the_settle_delay_while_writers_stay_busy(
    client: FlaskClient, session_factory: sessionmaker[Session], clock: Any
) -> None:
    with session_factory.begin() as session:
        first = b.change(session, 1).seq
    aborted = session_factory()
    b.change(aborted, 2)
    aborted.rollback()
    aborted.close()
    with session_factory.begin() as session:
        kept = b.change(session, 3).seq
    writer = session_factory()
    b.change(writer, 4)  # another writer stays in flight throughout
    try:
        assert [c["seq"] for c in feed(client, 0)["changes"]] == [first]  # hole first seen now
        clock.now += timedelta(seconds=9)
        assert [c["seq"] for c in feed(client, first)["changes"]] == []
        clock.now += timedelta(seconds=2)
        assert [c["seq"] for c in feed(client, first)["changes"]] == [kept]
    finally:
        writer.rollback()
        writer.close()


@postgres_only
def test_a_follower_sees_every_commit_once_while_writers_commit_out_of_order(
    client: FlaskClient, session_factory: sessionmaker[Session]
) -> None:
    import random
    import threading
    import time

    def write(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(12):
            session = session_factory()
            try:
                b.change(session, seed)  # draws the seq now
                time.sleep(rng.random() * 0.03)  # others draw and commit meanwhile
                if rng.random() < 0.15:
                    session.rollback()
                else:
                    session.commit()
            finally:
                session.close()

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for writer in writers:
        writer.start()
    seen: list[int] = []
    after = 0
    while any(w.is_alive() for w in writers):
        body = feed(client, after, limit=5)
        seen += [c["seq"] for c in body["changes"]]
        after = body["next_after"]
    for writer in writers:
        writer.join()
    rest, _ = follow(client, after, limit=5)
    seen += rest

    committed = list(arrange_seqs(session_factory))
    assert len(seen) == len(set(seen)), "a change was served twice"
    assert seen == committed, "a change was skipped"


def arrange_seqs(session_factory: sessionmaker[Session]) -> list[int]:
    with session_factory() as session:
        return list(session.scalars(sa.select(Change.seq).order_by(Change.seq)))
