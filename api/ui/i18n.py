"""Japanese and English labels of the pages (issue 20; the terms themselves are Japanese).

The page's fixed words (headings, column names, buttons, states, badges) are looked up here by
their English text: ``t("Invoices")`` is ``請求書`` on a Japanese page. Figures, dates, articles
("Art. 9.4") and the facts of the history (event details, deadline labels, which name the rule
in the rule book's words) stay as they are. A text without a Japanese entry is shown in English,
never blank.

The language: ``?lang=ja`` or ``?lang=en`` (remembered in the ``ui_lang`` cookie), else the
cookie, else ``Accept-Language`` (Japanese first: ja), else English. ``LanguageMiddleware`` sets
it for the request (a context variable the renderer reads).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LANGUAGES = ("en", "ja")
COOKIE = "ui_lang"
language: contextvars.ContextVar[str] = contextvars.ContextVar("ui_language", default="en")

JA: dict[str, str] = {
    # frame
    "Contract lifecycle": "契約ライフサイクル", "read-only": "閲覧専用", "Search": "検索", "Log out": "ログアウト",
    "contract id or customer number": "契約 ID または顧客番号", "sandbox": "サンドボックス",
    "History tampered: the hash chain is broken": "履歴の改ざん: ハッシュチェーンが壊れています",
    # dashboard, search, list
    "Dashboard": "ダッシュボード", "Find a contract": "契約の検索",
    "Contract id or customer number": "契約 ID または顧客番号",
    "All contracts": "すべての契約", "Contracts": "契約一覧", "Contracts by state": "状態別の契約数", "Status": "状況",
    "Hash chain": "ハッシュチェーン", "Projection lag": "投影の遅れ", "Business date (JST)": "業務日 (JST)",
    "Overdue invoices": "支払期日を過ぎた請求書", "total outstanding": "未払合計", "Deadlines": "期限",
    "Past due, not yet handled by the scheduler": "期限到来・スケジューラ未処理", "None.": "なし。",
    "Customer": "顧客", "Service": "サービス", "Reference": "参照番号", "State": "状態", "Contractor": "契約者",
    "Contract id": "契約 ID", "Period": "対象期間", "Due": "支払期日", "Outstanding (yen)": "未払額 (円)",
    "Late interest (yen, Art. 9.4)": "遅延損害金 (円, 第9条第4項)", "Deadline": "期限", "Contract": "契約",
    "Ref": "参照", "Customer number contains": "顧客番号 (部分一致)", "any": "すべて",
    "with a reference": "参照番号あり",
    "without": "参照番号なし", "Filter": "絞り込み", "previous": "前へ", "next": "次へ", "page": "ページ",
    "of": "/", "No contract matches.": "該当する契約はありません。",
    "No contract found for": "該当する契約がありません:",
    # contract page
    "As of": "基準日", "Show": "表示", "back to today": "今日に戻る", "Terms": "契約条件", "Concluded": "契約成立日",
    "service from": "サービス開始", "Trial": "無料トライアル", "Last month (noticed)": "最終利用月 (解約通知)",
    "Ended": "終了日", "Stored data kept until": "保存データの保管期限", "deleted": "削除済",
    "Contractor data erased": "契約者情報の消去", "Contacts erased on request": "請求により連絡先を消去",
    "Outstanding": "未払額", "Late interest": "遅延損害金", "not kept": "記録なし", "intact": "正常",
    "broken": "破損", "events verified": "件のイベントを検証", "head": "先頭",
    "Contractor information (personal data)": "契約者情報 (個人情報)", "Invoices": "請求書", "Invoice": "請求書",
    "Kind": "種別", "Issued": "発行日", "Total": "合計", "Paid": "入金額", "paid": "入金済", "open": "未払",
    "overdue since": "支払遅延 開始日", "payment": "入金", "paid on": "入金日", "refund": "返金",
    "No invoice yet.": "請求書はまだありません。", "SLA claims": "SLA 申請", "Claim": "申請",
    "Outage (JST)": "障害 (JST)",
    "Cause": "原因", "Received": "受付日", "Proofs": "証憑", "Eligible": "対象", "eligible": "対象",
    "not eligible": "対象外", "Credit days": "減額日数", "Range (yen)": "範囲 (円)", "Decision": "決定",
    "No SLA claim.": "SLA 申請はありません。", "Notices sent": "送信済みの通知", "Article": "条項",
    "Notification": "通知", "Endpoint": "送信先", "Delivered (UTC)": "配信 (UTC)", "Attempts": "試行回数",
    "delivered": "配信済", "Open deadlines": "未到来の期限", "What": "内容", "Concerns": "対象",
    "due, not yet run": "期限到来・未実行", "Nothing open.": "未到来の期限はありません。", "Timeline": "経緯",
    "Business date": "業務日", "Recorded (JST)": "記録日時 (JST)", "Event": "イベント", "Actor": "実行者",
    "Details": "詳細", "State after": "変更後の状態", "yen": "円", "users": "ユーザー",
    # login, errors
    "Log in": "ログイン", "API key": "API キー", "Back to the search": "検索に戻る",
    # states (domain.contract.State values, read as words)
    "opened": "受付", "trial": "無料トライアル中", "applied": "申込済", "concluded": "契約成立", "active": "利用中",
    "suspension noticed": "利用停止予告中", "terminated": "解約済", "trial expired": "トライアル期間満了",
    "rejected": "申込不承諾",
}


def t(text: str) -> str:
    """``text`` in the request's language (English when it has no Japanese entry)."""
    if language.get() == "ja":
        return JA.get(text, text)
    return text


def state_label(value: str) -> str:
    """A state value (``suspension_noticed``) as words in the request's language."""
    return t(value.replace("_", " "))


def _from_accept(header: str) -> str:
    first = header.split(",")[0].strip().lower()
    return "ja" if first.startswith("ja") else "en"


def choose(query: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[str, bool]:
    """(language, given by the query: remember it in the cookie)."""
    asked = parse_qs(query.decode("latin-1")).get("lang", [""])[0]
    if asked in LANGUAGES:
        return asked, True
    cookie_header = b""
    accept = b""
    for name, value in headers:
        if name == b"cookie":
            cookie_header = value
        elif name == b"accept-language":
            accept = value
    if cookie_header:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(cookie_header.decode("latin-1"))
        except Exception:  # noqa: BLE001 - a malformed cookie header: ignore it
            jar = SimpleCookie()
        if COOKIE in jar and jar[COOKIE].value in LANGUAGES:
            return jar[COOKIE].value, False
    return _from_accept(accept.decode("latin-1")), False


class LanguageMiddleware:
    """Sets ``language`` for the request; ``?lang=`` also sets the cookie on the response."""

    def __init__(self, app: ASGIApp, secure: Callable[[Scope], bool] | None = None) -> None:
        self.app = app
        self.secure = secure or (lambda scope: scope.get("scheme") == "https")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lang, remember = choose(scope.get("query_string", b""), list(scope.get("headers") or ()))
        token = language.set(lang)
        cookie = (f"{COOKIE}={lang}; Path=/ui; Max-Age=31536000; SameSite=Strict"
                  + ("; Secure" if self.secure(scope) else "")).encode("latin-1")

        async def send_with_cookie(message: Message) -> None:
            if remember and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"set-cookie", cookie)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookie)
        finally:
            language.reset(token)
