"""Relais's own pages for the links in its mail (no front end configured): every link a mail
carries opens a working page, whose form calls the same service as the API."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from app import create_app
from tests.conftest import PASSWORD, invitation_token, sign_up
from tests.mail import last_mail, links_in, token_in
from tests.openapi_operations import openapi_spec

PAGE_PATHS = ("/accept-invitation", "/verify-email", "/reset-password")


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _html(response) -> str:
    assert response.mimetype == "text/html", response.mimetype
    return response.get_data(as_text=True)


def assert_safe_page(response) -> str:
    """A page of ours: not framable, not cached, no Referer, nothing loaded from elsewhere."""
    html = _html(response)
    headers = response.headers
    assert headers["X-Frame-Options"] == "DENY"
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    assert "<script" not in html and " src=" not in html and "<link" not in html
    # The one inline stylesheet is the one the policy allows, by its hash.
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    return html


def _invite(client, owner, email: str, **payload: Any) -> str:
    body = {"email": email, **(payload or {"agency_role": "member"})}
    assert client.post("/v1/invitations", json=body, headers=owner.headers).status_code == 201
    return next(u for u in links_in(last_mail(client.application, email)) if "accept" in u)


def test_the_accept_url_of_an_invitation_opens_a_form_that_accepts_it(client, make_agency):
    owner = make_agency("Agence Lumière", brands=1)
    accept_url = _invite(
        client, owner, "chloe@example.com", brand_id=owner.brands[0], brand_role="client"
    )
    page = client.get(_path(accept_url))
    assert page.status_code == 200  # never a 404
    html = assert_safe_page(page)
    assert "Agence Lumière" in html and "chloe@example.com" in html
    assert 'name="name"' in html and 'name="password"' in html and 'method="post"' in html

    token = token_in(last_mail(client.application, "chloe@example.com"), "/accept-invitation")
    short = client.post(
        "/accept-invitation", data={"token": token, "name": "Chloé", "password": "short"}
    )
    assert short.status_code == 422
    assert "Length must be between 10 and 512" in assert_safe_page(short)

    done = client.post(
        "/accept-invitation", data={"token": token, "name": "Chloé", "password": PASSWORD}
    )
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "You joined Agence Lumière" in assert_safe_page(done)
    signed_in = client.post(
        "/v1/auth/token", json={"email": "chloe@example.com", "password": PASSWORD}
    )
    assert signed_in.status_code == 200
    # Spent: the same link now shows the API's problem, with its status.
    again = client.get(_path(accept_url))
    assert again.status_code == 409
    assert "This invitation was already accepted; sign in instead." in assert_safe_page(again)


def test_an_existing_account_accepts_with_its_password(client, make_agency):
    owner = make_agency(brands=0)
    elsewhere = make_agency(brands=0)
    accept_url = _invite(client, owner, elsewhere.email)
    html = assert_safe_page(client.get(_path(accept_url)))
    assert "already have a Relais account" in html and 'name="name"' not in html

    token = invitation_token(client, elsewhere.email)
    wrong = client.post("/accept-invitation", data={"token": token, "password": "not it at all"})
    assert wrong.status_code == 401
    assert "give its password to accept the invitation" in assert_safe_page(wrong)
    right = client.post("/accept-invitation", data={"token": token, "password": PASSWORD})
    assert right.status_code == 200


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_a_bad_link_shows_the_problem_and_a_post_without_the_secret_does_nothing(client, path):
    page = client.get(f"{path}?token=xyz_not-a-real-token")
    assert page.status_code == 404
    assert "not valid" in assert_safe_page(page) or "does not exist" in _html(page)
    forged = client.post(path, data={"token": "", "password": PASSWORD, "name": "Mallory"})
    if path == "/reset-password":  # without a token, this page asks for an address
        assert forged.status_code == 422
    else:
        assert forged.status_code == 404


def test_the_signup_link_confirms_the_address(client, app):
    asked = client.post(
        "/v1/signup",
        json={
            "agency_name": "Café",
            "name": "Ana",
            "email": "ana@example.com",
            "password": PASSWORD,
        },
    )
    assert asked.status_code == 202
    verify_url = next(u for u in links_in(last_mail(app, "ana@example.com")) if "verify" in u)
    page = client.get(_path(verify_url))
    assert page.status_code == 200
    assert "ana@example.com" in assert_safe_page(page)

    token = token_in(last_mail(app, "ana@example.com"), "/verify-email")
    wrong = client.post("/verify-email", data={"token": token, "password": "another password"})
    assert wrong.status_code == 401
    assert "not the password you chose" in assert_safe_page(wrong)
    done = client.post("/verify-email", data={"token": token, "password": PASSWORD})
    assert done.status_code == 200
    assert "Café is created" in assert_safe_page(done)
    assert (
        client.post(
            "/v1/auth/token", json={"email": "ana@example.com", "password": PASSWORD}
        ).status_code
        == 200
    )


def test_forgot_password_from_the_page_to_the_new_password(client, app, make_agency):
    owner = make_agency(brands=0)
    ask = client.get("/reset-password")
    assert ask.status_code == 200 and 'name="email"' in assert_safe_page(ask)
    sent = client.post("/reset-password", data={"email": owner.email})
    assert sent.status_code == 200 and "Check your mail" in assert_safe_page(sent)
    assert client.post("/reset-password", data={"email": "nope"}).status_code == 422

    reset_url = next(u for u in links_in(last_mail(app, owner.email)) if "reset" in u)
    form = client.get(_path(reset_url))
    assert form.status_code == 200 and 'name="password"' in assert_safe_page(form)
    token = token_in(last_mail(app, owner.email), "/reset-password")
    done = client.post("/reset-password", data={"token": token, "password": "my new password!"})
    assert done.status_code == 200 and "Password changed" in assert_safe_page(done)
    login = client.post(
        "/v1/auth/token", json={"email": owner.email, "password": "my new password!"}
    )
    assert login.status_code == 200


def test_with_a_front_end_the_links_go_there(app_config):
    front = create_app({**app_config, "FRONTEND_BASE_URL": "https://app.agency.example/"})
    client = front.test_client()
    response = sign_up(client, email="front@example.com")
    assert response.status_code == 201
    links = links_in(last_mail(front, "front@example.com"))
    assert links and all(
        u.startswith("https://app.agency.example/verify-email?token=") for u in links
    )


def test_the_pages_are_not_in_the_api_spec():
    documented = set(openapi_spec()["paths"])
    assert not documented & set(PAGE_PATHS)
