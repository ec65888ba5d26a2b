"""The mini program API's public contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from omo.core.schemas import RequestModel

PAGE = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./\-]*$")


class AppRequest(RequestModel):
    name: str = Field(min_length=1, max_length=64)


class AppOut(BaseModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    appid: str
    name: str
    released_version: str | None
    created_at: datetime


class CreatedAppOut(AppOut):
    secret: str = Field(description="Shown once: only its hash is kept")


class SecretOut(BaseModel):
    appid: str
    secret: str = Field(description="Shown once: only its hash is kept")


class PermissionOut(BaseModel):
    name: str
    reason: str


class VersionOut(BaseModel):
    id: uuid.UUID
    code: int
    name: str
    state: str = Field(description="uploaded | trial | released | superseded | withdrawn")
    packed_size: int
    unpacked_size: int
    sha256: str
    pages: list[str]
    permissions: list[PermissionOut]
    uploaded_at: datetime
    released_at: datetime | None


class TesterRequest(RequestModel):
    omo_id: str = Field(min_length=1, max_length=64)


class TestersOut(BaseModel):
    testers: list[str]


class LaunchOut(BaseModel):
    appid: str
    name: str
    version: str
    trial: bool
    page: str
    pages: list[str]
    permissions: list[PermissionOut]
    window: dict[str, Any]
    verified: bool = False


class CodeOut(BaseModel):
    url: str = Field(description="What the QR code holds")
    svg: str = Field(description="The QR code as inline SVG")


class PrefixRequest(RequestModel):
    prefix: str = Field(min_length=8, max_length=512)
    page: str = PAGE


class PrefixOut(BaseModel):
    id: uuid.UUID
    prefix: str
    page: str
    verified: bool
    verify_url: str = Field(description="Serve `token` here, then ask for verification")
    token: str


class ResolvedOut(BaseModel):
    appid: str
    page: str
    link: str
    url: str = Field(description="The host page that opens the mini program with the link")


class LoginCodeOut(BaseModel):
    code: str = Field(description="One-time; the mini program's server exchanges it")
    expires_in: int = Field(description="Seconds")


class SessionRequest(RequestModel):
    code: str = Field(min_length=1, max_length=128)


class SessionOut(BaseModel):
    openid: str
    unionid: str
    session_key: str = Field(description="For the mini program's server only")


class ConsentOut(BaseModel):
    appid: str
    name: str
    privacy_accepted: bool
    grants: dict[str, bool] = Field(description="permission -> granted (true) or denied")


class GrantRequest(RequestModel):
    granted: bool


class ProfileOut(BaseModel):
    nickname: str
    avatar_url: str | None


class StorageValueOut(BaseModel):
    key: str
    value: str


class StorageRequest(RequestModel):
    value: str = Field(max_length=65536)


class StorageUsageOut(BaseModel):
    used: int
    quota: int


AMOUNT = Field(pattern=r"^[0-9]{1,15}(\.[0-9]{1,3})?$", examples=["12.50"])
CURRENCY = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])


class MoneyOut(BaseModel):
    amount: str
    currency: str
    minor: int


class OrderRequest(RequestModel):
    order_id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")
    amount: str = AMOUNT
    currency: str = CURRENCY
    description: str = Field(default="", max_length=128)


class OrderOut(BaseModel):
    prepay_id: uuid.UUID = Field(description="What the frame passes to requestPayment")
    order_id: str
    description: str
    merchant_name: str
    amount: MoneyOut
    status: str
    paid: MoneyOut | None
    discount: MoneyOut | None


class RefundRequest(RequestModel):
    refund_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    amount: str = AMOUNT
    currency: str = CURRENCY


class PaymentRequest(RequestModel):
    pin: str | None = Field(default=None, max_length=12)
    amount: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,15}(\.[0-9]{1,3})?$",
        description="The amount the frame expects; refused if it differs from the order's",
    )
    coupon_id: uuid.UUID | None = Field(
        default=None, description="The coupon chosen with chooseCoupon; default: the best one"
    )


# -- chooseCoupon, requestSubscribeMessage, issue coupon, recents, search, verification -------


class UsableCouponOut(BaseModel):
    coupon_id: uuid.UUID
    campaign_id: uuid.UUID
    title: str
    discount: MoneyOut | None = Field(description="What it takes off the order, if one was named")
    gift: str
    ends_at: datetime


class TemplateOut(BaseModel):
    template_id: str
    title: str
    remaining: int = Field(description="Messages the person already allowed")


class SubscribeRequest(RequestModel):
    templates: dict[str, int] = Field(
        min_length=1,
        max_length=3,
        description="template id -> how many more messages the person allows (0 = refuse)",
    )


class SubscriptionOut(BaseModel):
    appid: str
    name: str
    template_id: str
    title: str
    remaining: int


class SubscribedMessageRequest(RequestModel):
    touser: str = Field(min_length=1, max_length=128, description="The person's openid")
    template_id: str = Field(min_length=1, max_length=64)
    page: str = Field(default="", max_length=200, description="Opened from the card")
    data: dict[str, Any] = Field(default_factory=dict, max_length=20)


class SubscribedMessageOut(BaseModel):
    remaining: int = Field(description="Messages of this template still allowed")


class IssueCouponRequest(RequestModel):
    openid: str = Field(min_length=1, max_length=128)
    campaign_id: uuid.UUID


class IssuedCouponOut(BaseModel):
    coupon_id: uuid.UUID
    campaign_id: uuid.UUID
    title: str


class MiniAppCardOut(BaseModel):
    appid: str
    name: str
    verified: bool
    url: str = Field(description="The host page of its entry page")
    opened_at: datetime | None = None


class VerificationRequest(RequestModel):
    verified: bool = True


class OriginsRequest(RequestModel):
    origins: list[str] = Field(
        max_length=20, description="https origins (http on loopback in development)"
    )


class OriginsOut(BaseModel):
    origins: list[str]


class BackendRequest(RequestModel):
    """The bridge's `request` (wx.request's shape): the host fetches it from the mini
    program's registered server."""

    url: str = Field(min_length=1, max_length=2048)
    method: str = Field(default="GET", max_length=7)
    header: dict[str, str] = Field(default_factory=dict)
    data: Any = None
    dataType: str = Field(default="json", pattern=r"^(json|text)$")  # noqa: N815 (wx's name)


class BackendResponseOut(BaseModel):
    statusCode: int  # noqa: N815 (wx.request's names)
    header: dict[str, str]
    data: Any


class DecodedOut(BaseModel):
    result: str = Field(description="What the code holds")
    scanType: str = Field(description="QR_CODE, EAN_13, UPC_A, ...")  # noqa: N815


class ScanOut(BaseModel):
    codes: list[DecodedOut] = Field(description="Every code found, the largest first")


class DevBasketRequest(RequestModel):
    openid: str = Field(min_length=1, max_length=64)
    amount: str = AMOUNT
    currency: str = CURRENCY


class BestOfferOut(BaseModel):
    title: str
    discount: MoneyOut


class NextOfferOut(BaseModel):
    title: str
    spend_more: MoneyOut
    discount: MoneyOut


class DevBasketOut(BaseModel):
    best: BestOfferOut | None = Field(description="The best coupon the person holds for it")
    nearest: NextOfferOut | None = Field(description="Spend this much more to save that much")
