"""All models, imported here so metadata (and Alembic) sees every table."""

from app.models.account_revocation import AccountRevocation
from app.models.agency import Agency, AgencyMembership, AgencyRole
from app.models.api_key import ApiKey
from app.models.audit import AuditEvent
from app.models.auth_session import LoginThrottle, RefreshToken
from app.models.base import Base
from app.models.brand import ApprovalMode, Brand, BrandMembership, BrandRole, BrandStatus
from app.models.idempotency import IdempotencyRecord
from app.models.invitation import Invitation
from app.models.mail import OutboundEmail, OutboundEmailStatus, PasswordReset, SignupRequest
from app.models.media import Media
from app.models.post import (
    ApprovalStage,
    Delivery,
    DeliveryAttempt,
    DeliveryErrorKind,
    DeliveryStatus,
    Post,
    PostingSlot,
    PostLabel,
    PostMedia,
    PostStatus,
    PostVariant,
)
from app.models.social_account import (
    AccountHealth,
    MastodonApp,
    Network,
    OAuthState,
    SocialAccount,
)
from app.models.user import User
from app.models.webhook import (
    DisabledReason,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)

__all__ = [
    "AccountRevocation",
    "Agency",
    "AgencyMembership",
    "AccountHealth",
    "AgencyRole",
    "ApiKey",
    "ApprovalMode",
    "AuditEvent",
    "Base",
    "Brand",
    "BrandMembership",
    "BrandRole",
    "BrandStatus",
    "IdempotencyRecord",
    "Invitation",
    "LoginThrottle",
    "MastodonApp",
    "Media",
    "ApprovalStage",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryErrorKind",
    "DeliveryStatus",
    "Post",
    "PostingSlot",
    "PostLabel",
    "PostMedia",
    "PostStatus",
    "PostVariant",
    "Network",
    "OAuthState",
    "OutboundEmail",
    "OutboundEmailStatus",
    "PasswordReset",
    "SignupRequest",
    "RefreshToken",
    "SocialAccount",
    "User",
    "DisabledReason",
    "WebhookDelivery",
    "WebhookDeliveryStatus",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookEventType",
]
