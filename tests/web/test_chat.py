"""Chat in the browser: sign-up, streaming, Markdown, stop, the error sentences, the session list."""

import re
import time
from collections.abc import Awaitable, Callable

import httpx
from playwright.async_api import Browser, Page, Route, expect

from app.api.middleware import CONTENT_SECURITY_POLICY
from tests.fake_llm import FakeLLM, Fault
from tests.reporting import report
from tests.web.conftest import new_page, screenshot, send, sign_up


async def test_sign_up_chat_streams_and_names_the_session(page: Page, fake_llm: FakeLLM) -> None:
    await sign_up(page)
    await send(page, "hello from the browser")
    answer = page.locator("article.assistant").last
    await expect(answer).to_contain_text("Echo: hello from the browser")
    await expect(page).to_have_url(re.compile(r"/c/[0-9a-f-]{36}$"))
    # The reply came over the stream route, token by token.
    assert fake_llm.chat_requests[-1].get("stream") is True
    await expect(page.locator(".session-link").first).to_be_visible()


async def test_markdown_code_is_highlighted_and_copyable(page: Page, fake_llm: FakeLLM) -> None:
    fake_llm.script_reply(
        "Here is **bold** text.\n\n```python\ndef add(a, b):\n    return a + b\n```\n", when="show me code"
    )
    await sign_up(page)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await send(page, "show me code")
    answer = page.locator("article.assistant").last
    await expect(answer.locator("strong")).to_have_text("bold")
    await expect(answer.locator("pre code .hljs-keyword").first).to_have_text("def")
    await answer.get_by_role("button", name="Copy").click()
    await expect(answer.get_by_role("button", name="Copied")).to_be_visible()
    assert "return a + b" in await page.evaluate("navigator.clipboard.readText()")


async def test_model_html_and_javascript_links_are_inert(
    browser: Browser, web_url: str, fake_llm: FakeLLM
) -> None:
    fake_llm.script_reply(
        "Look: <img src=x onerror=alert(1)> <script>alert(2)</script> [click me](javascript:alert(3)) "
        '<a href="javascript:alert(4)">raw</a> <iframe src="/"></iframe>',
        when="xss probe",
    )
    context, page, problems = await new_page(browser, web_url)
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    await sign_up(page)
    await send(page, "xss probe")
    answer = page.locator("article.assistant").last
    await expect(answer).to_contain_text("Look:")
    await expect(answer.get_by_text("click me")).to_be_visible()
    html = await answer.inner_html()
    assert "onerror" not in html and "<script" not in html and "<iframe" not in html
    assert "javascript:" not in html
    assert await answer.locator("img").count() == 0 or await answer.locator("img[onerror]").count() == 0
    await answer.get_by_text("click me").click()
    await page.wait_for_timeout(300)
    assert dialogs == []
    # Sanitising parses the reply in an inert document, and Chromium still reports the handler it
    # would not compile there: the CSP is a second wall. Nothing else may be reported.
    assert all("inline event handler" in item for item in problems.items), problems.items
    await context.close()


async def test_tool_calls_show_as_collapsible_steps(page: Page) -> None:
    await sign_up(page)
    await send(page, "what is [calc:6*7]")
    answer = page.locator("article.assistant").last
    await expect(answer).to_contain_text("The tool said: 42")
    step = answer.locator("details.tool")
    await expect(step).to_contain_text("calculator")
    await step.locator("summary").click()
    await expect(step).to_contain_text('"expression": "6*7"')


async def test_stop_cancels_the_turn_and_keeps_nothing(
    page: Page, fake_llm: FakeLLM, client: httpx.AsyncClient
) -> None:
    await sign_up(page)
    await send(page, "first")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: first")
    fake_llm.token_delay = 0.4
    await send(page, "a long answer please with many words to stream slowly")
    answer = page.locator("article.assistant").last
    await expect(answer).to_contain_text("Echo:")
    await page.keyboard.press("Escape")
    await expect(answer).to_contain_text("Stopped. This answer was not saved.")
    await expect(page.get_by_role("button", name="Send")).to_be_visible()
    fake_llm.token_delay = 0.0
    # The server cancelled it: after a reload only the first turn is there, and a new turn works.
    await page.reload()
    await expect(page.locator("article.assistant")).to_have_count(1)
    await send(page, "after the stop")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: after the stop")


ERRORS = [
    ({"error": "thread_busy", "detail": "busy"}, 409, {}, "still answering in this chat"),
    ({"error": "rate_limited", "detail": "slow down"}, 429, {"Retry-After": "7"}, "Try again in 7 seconds"),
    ({"error": "quota_exceeded", "detail": "quota"}, 429, {"Retry-After": "100"}, "reached your usage limit"),
    ({"error": "llm_unavailable", "detail": "down"}, 503, {}, "model is not available right now"),
]


def refuse(status: int, body: dict[str, str], headers: dict[str, str]) -> Callable[[Route], Awaitable[None]]:
    async def handler(route: Route) -> None:
        await route.fulfill(status=status, json=body, headers=headers)

    return handler


async def test_typed_errors_read_as_sentences(page: Page) -> None:
    await sign_up(page)
    await send(page, "make a session")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: make a session")
    for body, status, headers, words in ERRORS:
        await page.route("**/chat/stream", refuse(status, body, headers))
        await send(page, f"try {body['error']}")
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text(words)
        assert "{" not in await alert.inner_text()
        await page.unroute("**/chat/stream")
        # What was typed is back in the box, to send again.
        await expect(page.get_by_label("Message", exact=True)).to_have_value(f"try {body['error']}")
        await page.get_by_label("Message", exact=True).fill("")


async def test_a_real_model_failure_reads_as_a_sentence(page: Page, fake_llm: FakeLLM) -> None:
    await sign_up(page)
    await send(page, "warm up")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: warm up")
    fake_llm.script(Fault(status=500), Fault(status=500), Fault(status=500))
    await send(page, "this one fails")
    await expect(page.get_by_role("alert")).to_contain_text("The model is not available right now")


async def test_rename_and_delete_in_the_sidebar(page: Page) -> None:
    await sign_up(page)
    await send(page, "to be renamed")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: to be renamed")
    item = page.locator("li.session").first
    await item.hover()
    await item.get_by_role("button", name=re.compile("^Rename")).click()
    await item.get_by_label("Chat name").fill("My renamed chat")
    await item.get_by_label("Chat name").press("Enter")
    await expect(page.locator(".session-link").first).to_have_text("My renamed chat")
    await page.reload()
    await expect(page.locator(".session-link").first).to_have_text("My renamed chat")
    item = page.locator("li.session").first
    await item.hover()
    await item.get_by_role("button", name=re.compile("^Delete")).click()
    await item.get_by_role("button", name="Delete", exact=True).click()
    await expect(page.locator("li.session")).to_have_count(0)
    await expect(page).to_have_url(re.compile(r"/$"))


async def test_two_users_never_see_each_other(browser: Browser, web_url: str) -> None:
    ctx_a, alice, _ = await new_page(browser, web_url)
    ctx_b, bob, _ = await new_page(browser, web_url)
    try:
        await sign_up(alice)
        await send(alice, "alice secret plans")
        await expect(alice.locator("article.assistant").last).to_contain_text("Echo: alice secret plans")
        alice_chat = alice.url
        await sign_up(bob)
        await expect(bob.get_by_text("No chats yet.")).to_be_visible()
        await bob.goto(alice_chat.replace(web_url, ""))
        await expect(bob.get_by_role("alert")).to_contain_text("does not exist")
        await expect(bob.get_by_text("alice secret plans")).to_have_count(0)
    finally:
        await ctx_a.close()
        await ctx_b.close()


async def test_keyboard_first_composer(page: Page) -> None:
    await sign_up(page)
    box = page.get_by_label("Message", exact=True)
    await box.fill("line one")
    await box.press("Shift+Enter")
    await box.type("line two")
    assert await box.input_value() == "line one\nline two"
    await box.press("Enter")
    await expect(page.locator("article.user .plain").last).to_have_text("line one\nline two")


async def test_security_headers_and_first_paint(page: Page, web_url: str) -> None:
    started = time.perf_counter()
    response = await page.goto("/login")
    await page.get_by_role("button", name="Log in").wait_for()
    first_paint = time.perf_counter() - started
    assert response is not None
    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "unsafe-eval" not in CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    # The page itself carries no inline script or style.
    html = await response.text()
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None and "style=" not in html
    paint = await page.evaluate(
        "performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint')?.startTime"
    )
    assert paint is not None, "the browser recorded no first contentful paint"
    report("web app first contentful paint (login page, embedded default)", f"{paint:.0f} ms")
    assert paint < 1000, paint
    assert first_paint < 5, first_paint
    await screenshot(page, "login")


async def test_assets_are_small_and_cached(web_url: str) -> None:
    async with httpx.AsyncClient(base_url=web_url) as http:
        page = await http.get("/", headers={"Accept-Encoding": "gzip"})
        assert page.headers["cache-control"] == "no-cache"
        names = re.findall(r'(?:src|href)="(/assets/[^"]+)"', page.text)
        assert len(names) == 2, names
        total = 0
        for name in names:
            # httpx decodes; the size on the wire is the raw stream's.
            async with http.stream("GET", name, headers={"Accept-Encoding": "gzip"}) as r:
                assert r.status_code == 200
                assert r.headers["content-encoding"] == "gzip"
                assert "immutable" in r.headers["cache-control"]
                total += sum([len(chunk) async for chunk in r.aiter_raw()])
        report("web app JavaScript and CSS, gzipped", f"{total / 1024:.1f} KB")
        assert total < 200 * 1024
        assert (await http.get("/assets/nothing.js")).status_code == 404
        assert (await http.get("/c/not-a-uuid")).status_code == 404
