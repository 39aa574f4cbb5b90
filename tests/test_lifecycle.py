"""The post lifecycle (app/services/lifecycle.py): the table of allowed moves, its 409 for any
other, the statuses the code uses against the table, and no status set outside it."""

from __future__ import annotations

import ast
from itertools import product
from pathlib import Path

import pytest

from app.errors import Conflict
from app.models import ApprovalMode, Brand, Delivery, DeliveryStatus, Post, PostStatus
from app.services import lifecycle
from app.services.lifecycle import (
    DELIVERY_TRANSITIONS,
    POST_TRANSITIONS,
    ROLL_UP_TRANSITIONS,
    SKIPPING_REVIEW,
)

APP = Path(__file__).resolve().parent.parent / "app"


@pytest.fixture
def brand_mode(monkeypatch):
    """The approval mode of the brand `require_transition` reads (default: a reviewing one)."""
    mode = {"value": ApprovalMode.INTERNAL.value}

    def get_brand(brand_id):
        return Brand(id=brand_id, approval_mode=mode["value"])

    monkeypatch.setattr(lifecycle.tenancy, "get_brand_or_404", get_brand)
    return mode


def a_post(status: PostStatus) -> Post:
    return Post(id="pst_01JD5ZQ7R9X4M2B8C6N3P1T0VW", brand_id="brd_x", status=status.value)


# -- the table ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "target"), sorted(POST_TRANSITIONS), ids=lambda s: s.value)
def test_every_move_in_the_table_is_allowed(brand_mode, source, target):
    if (source, target) in SKIPPING_REVIEW:
        brand_mode["value"] = ApprovalMode.NONE.value
    lifecycle.require_transition(a_post(source), target)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (PostStatus.DRAFT, PostStatus.APPROVED),  # approval needs a review
        (PostStatus.IN_REVIEW, PostStatus.SCHEDULED),  # not approved yet
        (PostStatus.PUBLISHED, PostStatus.CANCELLED),  # gone out: history
        (PostStatus.PUBLISHING, PostStatus.CANCELLED),
        (PostStatus.CANCELLED, PostStatus.SCHEDULED),
        (PostStatus.PARTIALLY_PUBLISHED, PostStatus.PUBLISHED),  # a failure stays a failure
        (PostStatus.FAILED, PostStatus.SCHEDULED),
    ],
    ids=lambda s: s.value,
)
def test_a_move_out_of_the_table_is_a_409_naming_both_statuses(brand_mode, source, target):
    with pytest.raises(Conflict) as refused:
        lifecycle.require_transition(a_post(source), target)
    assert refused.value.status == 409
    assert f"from '{source.value}' to '{target.value}'" in refused.value.detail


def test_the_409_says_where_a_post_can_go_or_that_its_status_is_final(brand_mode):
    with pytest.raises(Conflict, match="it can go to: in_review, scheduled, cancelled"):
        lifecycle.require_transition(a_post(PostStatus.APPROVED), PostStatus.PUBLISHED)
    with pytest.raises(Conflict, match="'published' is final"):
        lifecycle.require_transition(a_post(PostStatus.PUBLISHED), PostStatus.SCHEDULED)
    # Only the moves this brand allows: a reviewing brand does not schedule drafts.
    with pytest.raises(Conflict, match="it can go to: in_review, cancelled[.]"):
        lifecycle.require_transition(a_post(PostStatus.DRAFT), PostStatus.APPROVED)
    brand_mode["value"] = ApprovalMode.NONE.value
    with pytest.raises(Conflict, match="it can go to: in_review, scheduled, cancelled[.]"):
        lifecycle.require_transition(a_post(PostStatus.DRAFT), PostStatus.APPROVED)


@pytest.mark.parametrize(("source", "target"), sorted(SKIPPING_REVIEW), ids=lambda s: s.value)
def test_skipping_review_is_refused_in_a_brand_that_reviews(brand_mode, source, target):
    assert (source, target) in POST_TRANSITIONS
    for mode in (ApprovalMode.INTERNAL, ApprovalMode.INTERNAL_AND_CLIENT):
        brand_mode["value"] = mode.value
        with pytest.raises(Conflict, match=f"approval mode is '{mode.value}'.*approved first"):
            lifecycle.require_transition(a_post(source), target)


def test_schedulable_statuses_come_from_the_table():
    reviewing = Brand(approval_mode=ApprovalMode.INTERNAL.value)
    unreviewed = Brand(approval_mode=ApprovalMode.NONE.value)
    assert lifecycle.schedulable_statuses(reviewing) == {"approved", "scheduled"}
    assert lifecycle.schedulable_statuses(unreviewed) == {
        "approved",
        "scheduled",
        "draft",
        "rejected",
    }


@pytest.mark.parametrize(("source", "target"), sorted(DELIVERY_TRANSITIONS), ids=lambda s: s.value)
def test_every_delivery_move_in_the_table_is_allowed(source, target, monkeypatch):
    announced: list[str] = []
    monkeypatch.setattr(
        lifecycle.webhooks, "emit_for_delivery", lambda event_type, _: announced.append(event_type)
    )
    delivery = Delivery(status=source.value)
    lifecycle.change_delivery_status(delivery, target)
    assert delivery.status == target.value and delivery.updated_at is not None
    # A move to a status webhooks hear of announces it (tests/test_webhooks.py sends it).
    expected = lifecycle.DELIVERY_WEBHOOKS.get(target) if source != target else None
    assert announced == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (DeliveryStatus.PUBLISHED, DeliveryStatus.SCHEDULED),
        (DeliveryStatus.CANCELLED, DeliveryStatus.SCHEDULED),
        (DeliveryStatus.FAILED, DeliveryStatus.PUBLISHED),
        (DeliveryStatus.PUBLISHING, DeliveryStatus.CANCELLED),  # a job has it: too late
    ],
    ids=lambda s: s.value,
)
def test_a_delivery_move_out_of_the_table_is_a_409(source, target):
    delivery = Delivery(status=source.value)
    with pytest.raises(Conflict, match=f"from '{source.value}' to '{target.value}'"):
        lifecycle.change_delivery_status(delivery, target)
    assert delivery.status == source.value


def test_what_deliveries_add_up_to_moves_the_post_only_as_the_table_allows():
    """Start from a freshly scheduled post with one to three deliveries, move one delivery at a
    time as DELIVERY_TRANSITIONS allows (cancelling aside: it cancels the post itself), and
    check that each change of `roll_up` is a move of POST_TRANSITIONS, and that the table's
    roll-up moves are exactly those that happen."""
    moves = [(a.value, b.value) for a, b in DELIVERY_TRANSITIONS if b != DeliveryStatus.CANCELLED]
    seen_post_moves = set()
    for count in (1, 2, 3):
        start = (DeliveryStatus.SCHEDULED.value,) * count
        reached, todo = {start}, [start]
        while todo:
            statuses = todo.pop()
            for (index, status), (source, target) in product(enumerate(statuses), moves):
                if status != source:
                    continue
                after = (*statuses[:index], target, *statuses[index + 1 :])
                before_post, after_post = lifecycle.roll_up(statuses), lifecycle.roll_up(after)
                if before_post != after_post:
                    assert (before_post, after_post) in POST_TRANSITIONS, (statuses, after)
                    seen_post_moves.add((before_post, after_post))
                if after not in reached:
                    reached.add(after)
                    todo.append(after)
    assert seen_post_moves == ROLL_UP_TRANSITIONS


# -- the code against the table -------------------------------------------------------------------


def _app_modules():
    files = sorted(APP.rglob("*.py"))
    assert len(files) > 50
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in files]


def _members_used(enum_name: str) -> set[str]:
    return {
        node.attr
        for _, tree in _app_modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == enum_name
        and node.attr.isupper()
    }


@pytest.mark.parametrize(
    ("enum", "table"),
    [(PostStatus, POST_TRANSITIONS), (DeliveryStatus, DELIVERY_TRANSITIONS)],
    ids=["post", "delivery"],
)
def test_every_status_is_in_the_table(enum, table):
    in_table = {status for move in table for status in move}
    assert set(enum) == in_table, "a status no move reaches or leaves"
    used = _members_used(enum.__name__)
    assert used, f"the scan found no {enum.__name__} in app/"
    assert used <= {status.name for status in in_table}


def test_statuses_change_only_through_the_lifecycle():
    """No `post.status = …` or `delivery.status = …` outside app/services/lifecycle.py, and new
    posts and deliveries start in their first status."""
    initial = {"Post": "DRAFT", "Delivery": "SCHEDULED"}
    offenders = []
    for path, tree in _app_modules():
        if path.name == "lifecycle.py":
            continue
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == "status"
                    and isinstance(target.value, ast.Name)
                    and ("post" in target.value.id or "deliver" in target.value.id)
                ):
                    offenders.append(f"{path.relative_to(APP.parent)}:{node.lineno}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in initial
            ):
                for keyword in node.keywords:
                    if keyword.arg == "status" and initial[node.func.id] not in ast.unparse(
                        keyword.value
                    ):
                        offenders.append(f"{path.relative_to(APP.parent)}:{node.lineno}")
    assert offenders == []


# -- through the API ------------------------------------------------------------------------------


def test_cancelling_twice_answers_409_naming_the_move(client, make_agency):
    owner = make_agency("Lifecycle", brands=1)
    brand_id = owner.brands[0]
    made = client.post(f"/v1/brands/{brand_id}/posts", json={"text": "x"}, headers=owner.headers)
    path = f"/v1/brands/{brand_id}/posts/{made.get_json()['id']}/cancel"
    assert client.post(path, headers=owner.headers).get_json()["status"] == "cancelled"
    again = client.post(path, headers=owner.headers)
    assert again.status_code == 409
    assert again.headers["Content-Type"] == "application/problem+json"
    assert "from 'cancelled' to 'cancelled'" in again.get_json()["detail"]
