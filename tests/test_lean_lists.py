"""The post and brand lists are read lean (plain rows, no marshmallow) and must answer exactly
what their schemas would: same body byte for byte, same headers, same pages. Each answer here is
compared with the reference built the ordinary way for the same rows and the same caller: ORM
objects, `paginate` and the page schema's dump."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from flask import jsonify, request

from app import tenancy
from app.api.http import paginate
from app.auth.principal import current_principal
from app.extensions import db
from app.models import Brand, Post
from app.schemas.brands import BrandPageSchema, BrandQueryArgsSchema
from app.schemas.posts import PostPageSchema, PostQueryArgsSchema, PostSchema
from app.services import posts
from tests.factories import in_tenant

REQUEST_ID = "lean-list-comparison"
SOON = datetime(2031, 3, 29, 0, 59, 59, 123456, tzinfo=UTC)


def _post_page() -> dict:
    """The post list as its view answered before it was read lean."""
    args = PostQueryArgsSchema().load(request.args)
    brand_id = request.view_args["brand_id"]
    page = paginate(posts.list_statement(brand_id, args, current_principal()), Post.id, args)
    return PostPageSchema().dump(page)


def _brand_page() -> dict:
    args = BrandQueryArgsSchema().load(request.args)
    stmt = tenancy.scoped_select(Brand)
    if args.get("status"):
        stmt = stmt.where(Brand.status == args["status"])
    return BrandPageSchema().dump(paginate(stmt, Brand.id, args))


def _reference(app, url: str, headers: dict[str, str]):
    """The answer of the pre-lean view for `url`, headers included."""
    build = _brand_page if url.startswith("/v1/brands?") else _post_page
    with app.test_request_context(url, headers=headers):
        assert app.preprocess_request() is None  # authenticates, enters the tenant scope
        response = app.process_response(jsonify(build()))
        db.session.remove()
        return response


def _same_shape(lean, reference, where: str = "body") -> None:
    """Equal values, and keys in the same order, all the way down."""
    assert type(lean) is type(reference), where
    if isinstance(reference, dict):
        assert list(lean) == list(reference), where
        for key in reference:
            _same_shape(lean[key], reference[key], f"{where}.{key}")
    elif isinstance(reference, list):
        assert len(lean) == len(reference), where
        for i, (a, b) in enumerate(zip(lean, reference, strict=True)):
            _same_shape(a, b, f"{where}[{i}]")
    else:
        assert lean == reference, where


def _compare(app, client, url: str, actor) -> dict:
    headers = {**actor.headers, "X-Request-Id": REQUEST_ID}
    lean = client.get(url, headers=headers)
    reference = _reference(app, url, headers)
    assert lean.status_code == reference.status_code == 200, lean.get_json()
    assert lean.get_data() == reference.get_data()
    assert dict(lean.headers) == dict(reference.headers)
    # Byte equality holds whatever the JSON settings; the shape is compared on its own too, so
    # that a provider that stops sorting keys would still get the schema's order.
    _same_shape(json.loads(lean.get_data()), json.loads(reference.get_data()))
    return lean.get_json()


@pytest.fixture
def world(factory, make_agency, invite_user):
    """A brand with posts of every status and every field shape, and its client user."""
    owner = make_agency("Lean", brands=2, approval_mode="internal_and_client")
    brand_id, other_brand = owner.brands
    customer = invite_user(owner, brand_id=brand_id, brand_role="client")
    with factory.in_brand(owner, brand_id) as rows:
        accounts = [rows.account(handle=f"acc{i}").id for i in range(3)]
        media = [rows.media(filename=f"m{i}.png", size_bytes=10).id for i in range(3)]
        statuses = [
            ("draft", None),
            ("in_review", "internal"),
            ("in_review", "client"),
            ("approved", None),
            ("scheduled", None),
            ("publishing", None),
            ("published", None),
            ("partially_published", None),
            ("failed", None),
            ("unknown", None),
            ("rejected", None),
            ("cancelled", None),
        ]
        variant_media = [None, [], [media[2], media[0]]]
        for n in range(30):
            status, stage = statuses[n % len(statuses)]
            rows.post(
                text=f'Post {n} — été ✓ "quoted" <b>' if n % 3 else "",
                link=f"https://example.com/{n}" if n % 2 else None,
                campaign="spring" if n % 4 == 0 else None,
                internal_notes=f"note {n}" if n % 5 else None,
                status=status,
                approval_stage=stage,
                review_comment="Typo" if status == "rejected" else None,
                scheduled_at=SOON + timedelta(hours=n) if n % 2 == 0 else None,
                published_at=SOON - timedelta(microseconds=n) if status == "published" else None,
                created_by_user_id=owner.user_id if n % 7 else None,
                updated_at=SOON if n % 3 == 0 else None,
                # Labels given out of order: both reads sort them.
                labels=["zeta", "Alpha", "éclair", "mid", "alpha"][: n % 6],
                media_ids=[media[(n + i) % 3] for i in range(n % 3)],
                variants={
                    account: {
                        "text": None if (n + i) % 2 else f"variant {i} of {n}",
                        "media_ids": variant_media[(n + i) % 3],
                    }
                    for i, account in enumerate(accounts[: n % 4])
                },
            )
    # A post of the other brand, which no list of this brand shows.
    factory.post(owner, other_brand, text="elsewhere", status="draft")
    return owner, customer, brand_id


def test_every_page_is_what_the_schema_dumps(app, client, world):
    owner, customer, brand_id = world
    base = f"/v1/brands/{brand_id}/posts"
    for actor in (owner, customer):
        seen, url = [], f"{base}?limit=7"
        while url:
            page = _compare(app, client, url, actor)
            seen += [(item["id"], item["status"], item["approval_stage"]) for item in page["items"]]
            cursor = page["next_cursor"]
            url = f"{base}?limit=7&cursor={cursor}" if cursor else None
        assert seen == sorted(seen) and len(seen) == len(set(seen))
        if actor is owner:
            assert len(seen) == 30
        else:
            # 8 of the 12 states are the client's to see (2 rounds of 12, then 4 of the first 6).
            assert len(seen) == 20
            assert {(status, stage) for _, status, stage in seen} == {
                ("in_review", "client"),
                ("approved", None),
                ("scheduled", None),
                ("publishing", None),
                ("published", None),
                ("partially_published", None),
                ("failed", None),
                ("unknown", None),
            }


@pytest.mark.parametrize(
    "query",
    [
        "limit=50",
        "limit=1",
        "status=published",
        "status=draft",
        "label=alpha&limit=3",
        "campaign=spring",
        "from=2031-03-29T10:00:00%2B02:00&to=2031-03-30T00:00:00Z",
        "label=nothing",
    ],
)
def test_filters_and_headers_match(app, client, world, query):
    owner, customer, brand_id = world
    for actor in (owner, customer):
        _compare(app, client, f"/v1/brands/{brand_id}/posts?{query}", actor)


def test_an_empty_brand_lists_nothing(app, client, make_agency):
    owner = make_agency("Empty", brands=1)
    page = _compare(app, client, f"/v1/brands/{owner.brands[0]}/posts", owner)
    assert page == {"items": [], "next_cursor": None}


def test_items_have_the_schemas_fields_in_its_order(app, world):
    """Compared before JSON encoding, so the order of keys counts even while the JSON provider
    sorts them; a field added to PostSchema fails here until the lean dump has it."""
    owner, customer, brand_id = world
    for actor in (owner, customer):
        url = f"/v1/brands/{brand_id}/posts?limit=50"
        with app.test_request_context(url, headers=actor.headers):
            assert app.preprocess_request() is None
            principal = current_principal()
            args = PostQueryArgsSchema().load({"limit": "50"})
            rows = posts.list_page_rows(brand_id, args, principal)
            lean = posts.list_items(rows, brand_id, principal)
            objects = db.session.scalars(
                posts.list_statement(brand_id, args, principal).order_by(Post.id)
            ).all()
            reference = PostSchema(many=True).dump(objects)
            db.session.remove()
        assert lean and list(lean[0]) == list(PostSchema().fields)
        _same_shape(lean, reference)


def test_brand_pages_are_what_the_schema_dumps(app, client, make_agency, invite_user):
    owner = make_agency("Brands", brands=0)
    brandings = [
        {},
        {"logo_url": "https://example.com/logo.png"},
        {"primary_color": "#112233", "secondary_color": None, "unknown": "kept out"},
        {"logo_url": None, "primary_color": "#AABBCC", "secondary_color": "#000000"},
    ]
    for i in range(9):
        created = client.post(
            "/v1/brands",
            json={"name": f"Brand {i} — é", "timezone": "America/New_York"},
            headers=owner.headers,
        )
        assert created.status_code == 201
        brand_id = created.get_json()["id"]
        if i % 3 == 0:
            client.post(f"/v1/brands/{brand_id}/archive", headers=owner.headers)
        with in_tenant(app, owner.agency_id) as session:
            brand = session.get(Brand, brand_id)
            brand.branding = brandings[i % 4]
            if i == 4:
                brand.branding = None
    member = invite_user(owner, brand_id=brand_id, brand_role="editor")
    for actor in (owner, member):
        for query in ("limit=4", "limit=50", "status=archived", "status=active&limit=2"):
            url = f"/v1/brands?{query}"
            while url:
                page = _compare(app, client, url, actor)
                cursor = page["next_cursor"]
                url = f"/v1/brands?{query}&cursor={cursor}" if cursor else None
