from __future__ import annotations

from flask.views import MethodView

from app import tenancy
from app.api.http import Blueprint, public
from app.api.idempotency import idempotent
from app.auth import permissions
from app.auth.principal import current_actor, current_principal
from app.extensions import db
from app.models import User
from app.schemas.identity import (
    AcceptedSchema,
    MeSchema,
    PasswordChangeSchema,
    PasswordResetConfirmSchema,
    PasswordResetRequestSchema,
    RefreshRequestSchema,
    SignupResultSchema,
    SignupSchema,
    SignupVerifySchema,
    TokenPairSchema,
    TokenRequestSchema,
)
from app.services import identity, password_reset, signup

blp = Blueprint("identity", __name__, url_prefix="/v1", description="Sign-up, tokens and you")


@blp.route("/signup")
class Signup(MethodView):
    @blp.doc(operationId="signup")
    @public
    @idempotent
    @blp.arguments(SignupSchema)
    @blp.response(202, AcceptedSchema)
    def post(self, data):
        """Sign up: create an agency and its owner, once the address is confirmed

        Public. Creates nothing yet: mails a confirmation link to the address and answers 202,
        the same whether or not the address already has an account (so the answer tells nobody
        which addresses are registered). The link's `token`, with the password chosen here, goes
        to `POST /v1/signup/verify`, which creates the agency and signs in. A registered address
        is told instead that someone tried, and may still confirm with its own password to
        create the new agency for that account.
        """
        signup.request_signup(**data)
        return {"detail": "A link to confirm the address is on its way there; follow it to finish."}


@blp.route("/signup/verify")
class SignupVerify(MethodView):
    @public
    @blp.doc(operationId="verifySignup")
    @blp.arguments(SignupVerifySchema)
    @blp.response(201, SignupResultSchema)
    @blp.alt_response(401, response="UNAUTHORIZED", description="Not the right password")
    @blp.alt_response(404, response="NOT_FOUND", description="Not a confirmation link's token")
    @blp.alt_response(409, response="CONFLICT", description="Already confirmed, or expired")
    def post(self, data):
        """Confirm a sign-up with the mailed link: create the agency and sign in

        Public (the mailed token proves the address). Give the password chosen at sign-up (or,
        when the address already had an account, that account's password). Returns the new
        agency, its owner and a signed-in token pair. An unknown token is a 404; a used or
        expired one a 409 (sign up again).
        """
        result = signup.complete(data["token"], data["password"], actor=current_actor())
        return {"agency": result.agency, "user": result.user, "tokens": result.tokens}


@blp.route("/auth/token")
class Token(MethodView):
    @blp.doc(operationId="login")
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
            actor=current_actor(),
        )


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @blp.doc(operationId="refreshToken")
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
    @blp.doc(operationId="logout")
    @public
    @blp.arguments(RefreshRequestSchema)
    @blp.response(204)
    def post(self, data):
        """Sign out: revoke the session of this refresh token

        Public (the refresh token is the credential). The session's access tokens stop working at
        once (401). An unknown token changes nothing.
        """
        identity.logout(data["refresh_token"])


@blp.route("/auth/password-reset")
class PasswordReset(MethodView):
    @public
    @blp.doc(operationId="requestPasswordReset")
    @blp.arguments(PasswordResetRequestSchema)
    @blp.response(202, AcceptedSchema)
    def post(self, data):
        """Ask for a password-reset link by e-mail

        Public. Always 202, whether or not an account has this address, so the answer tells
        nobody which addresses are registered. When one has, a single-use link (valid for an
        hour) is mailed to it; its `token` then goes to `POST /v1/auth/password-reset/confirm`.
        """
        password_reset.request_reset(data["email"])
        return {
            "detail": "If an account has this address, a link to reset its password is on "
            "its way there."
        }


@blp.route("/auth/password-reset/confirm")
class PasswordResetConfirm(MethodView):
    @public
    @blp.doc(operationId="confirmPasswordReset")
    @blp.arguments(PasswordResetConfirmSchema)
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND", description="Not a reset link's token")
    @blp.alt_response(409, response="CONFLICT", description="The link was used, or has expired")
    def post(self, data):
        """Choose a new password with a reset link

        Public (the mailed token is the credential). Sets the password, spends the link, and
        signs the person out everywhere: every session of theirs is revoked. An unknown token
        is a 404; a used or expired one a 409 (ask for a new link).
        """
        password_reset.confirm(data["token"], data["password"])


@blp.route("/me")
class Me(MethodView):
    @blp.doc(operationId="getMe")
    @blp.response(200, MeSchema)
    def get(self):
        """Who you are, in which agency, with which roles

        Anyone signed in, with a token or an API key: the person (null for a key), the agency, the
        agency role and the role on each brand, and every agency the person belongs to.
        """
        principal = current_principal()
        user = db.session.get(User, principal.user_id) if principal.user_id else None
        agency = tenancy.current_agency()
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
            actor=current_actor(),
        )
