from __future__ import annotations

from flask import request
from flask.views import MethodView

from app.api.http import Blueprint, idempotent, public
from app.auth import permissions
from app.auth.principal import current_principal
from app.extensions import db
from app.models import Agency, User
from app.schemas.identity import (
    MeSchema,
    PasswordChangeSchema,
    RefreshRequestSchema,
    SignupResultSchema,
    SignupSchema,
    TokenPairSchema,
    TokenRequestSchema,
)
from app.services import identity

blp = Blueprint("identity", __name__, url_prefix="/v1", description="Sign-up, tokens and you")


@blp.route("/signup")
class Signup(MethodView):
    @public
    @idempotent
    @blp.arguments(SignupSchema)
    @blp.response(201, SignupResultSchema)
    @blp.alt_response(409, response="CONFLICT", description="The e-mail is already registered")
    def post(self, data):
        """Create an agency and its owner

        Public. Returns the new agency, its owner and a signed-in token pair. An e-mail already
        registered is a 409.
        """
        result = identity.signup(**data)
        return {"agency": result.agency, "user": result.user, "tokens": result.tokens}


@blp.route("/auth/token")
class Token(MethodView):
    @public
    @blp.arguments(TokenRequestSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, response="UNAUTHORIZED", description="Wrong e-mail or password")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS", description="Wait before trying again")
    def post(self, data):
        """Sign in with e-mail and password

        Public. Returns a short-lived access token and a single-use refresh token; a wrong e-mail or
        password is a 401. After a few failures on one account, the address they come from waits
        longer and longer between tries, and an address failing on many accounts waits too (429
        with Retry-After); the account itself is never locked for its owner elsewhere.
        """
        return identity.login(
            email=data["email"],
            password=data["password"],
            agency_id=data.get("agency_id"),
            ip=request.remote_addr,
        )


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @public
    @blp.arguments(RefreshRequestSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, response="UNAUTHORIZED", description="Invalid, used or revoked token")
    def post(self, data):
        """Exchange a refresh token for a new pair

        Public (the refresh token is the credential). The refresh token is spent; presenting it
        again revokes the whole session (401).
        """
        return identity.refresh(data["refresh_token"])


@blp.route("/auth/logout")
class Logout(MethodView):
    @public
    @blp.arguments(RefreshRequestSchema)
    @blp.response(204)
    def post(self, data):
        """Sign out: revoke the session of this refresh token

        Public (the refresh token is the credential). The session's access tokens stop working at
        once (401). An unknown token changes nothing.
        """
        identity.logout(data["refresh_token"])


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeSchema)
    def get(self):
        """Who you are, in which agency, with which roles

        Anyone signed in, with a token or an API key: the person (null for a key), the agency, the
        agency role and the role on each brand, and every agency the person belongs to.
        """
        principal = current_principal()
        user = db.session.get(User, principal.user_id) if principal.user_id else None
        agency = db.session.get(Agency, principal.agency_id)
        return {
            "kind": principal.kind,
            "user": user,
            "api_key_id": principal.id if principal.kind == "api_key" else None,
            "agency": agency,
            "access": {
                "agency_id": principal.agency_id,
                "agency_role": principal.agency_role,
                "brand_roles": principal.brand_roles,
            },
            "agencies": identity.agencies_of(user.id) if user else [principal.agency_id],
        }


@blp.route("/me/password")
class MyPassword(MethodView):
    @blp.doc(operationId="changePassword")
    @blp.arguments(PasswordChangeSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(429, response="TOO_MANY_REQUESTS", description="Wait before trying again")
    def post(self, data):
        """Change your password

        Anyone signed in as a person (API keys have no password: 403). Give the current password
        (a wrong one is a 422, throttled like sign-in) and the new one. Every session of yours,
        in every agency, ends at once; the answer is a fresh token pair for this agency.
        """
        principal = current_principal()
        permissions.require(principal, "me.password")
        return identity.change_password(
            principal.user_id,
            principal.agency_id,
            current_password=data["current_password"],
            new_password=data["new_password"],
            ip=request.remote_addr,
        )
