"""Memories, account, admin and the login lifecycle in the browser."""

import re

import httpx
from fastapi import FastAPI
from playwright.async_api import Browser, Page, Route, expect

from tests.conftest import PASSWORD, register_admin
from tests.web.conftest import log_in, new_email, new_page, screenshot, send, sign_up


async def api_login(web_url: str, email: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=web_url) as http:
        r = await http.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_memory_panel_edit_delete_and_forget_everything(page: Page, web_url: str) -> None:
    email = await sign_up(page)
    headers = await api_login(web_url, email)
    async with httpx.AsyncClient(base_url=web_url, headers=headers) as http:
        for text in ("Has a dog called Biscuit", "Lives in Lisbon", "Likes green tea"):
            assert (await http.post("/api/v1/memories", json={"text": text})).status_code == 201
    await page.get_by_role("link", name="Memories").click()
    await expect(page.get_by_text("Has a dog called Biscuit")).to_be_visible()
    await screenshot(page, "memories")
    item = page.locator("li.memory", has_text="Lives in Lisbon")
    await expect(item).to_contain_text("Added by hand")
    await item.get_by_role("button", name="Edit").click()
    await page.get_by_label("Memory text").fill("Lives in Porto")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("Lives in Porto")).to_be_visible()
    await expect(page.get_by_text("Lives in Lisbon")).to_have_count(0)
    item = page.locator("li.memory", has_text="Likes green tea")
    await item.get_by_role("button", name="Delete").click()
    await item.locator(".confirm").get_by_role("button", name="Delete").click()
    await expect(page.get_by_text("Likes green tea")).to_have_count(0)
    await page.get_by_label("Search memories").fill("dog")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("li.memory").first).to_contain_text("Biscuit")
    await page.get_by_role("button", name="Forget everything").click()
    await page.get_by_role("button", name="Forget everything").click()
    await expect(page.get_by_text("Nothing remembered yet.")).to_be_visible()


async def test_expired_login_returns_to_login_and_keeps_the_draft(page: Page, web_url: str) -> None:
    email = await sign_up(page)
    await send(page, "first message")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: first message")
    chat_url = page.url
    # Every login of the user ends elsewhere (another device logs out everywhere).
    async with httpx.AsyncClient(base_url=web_url, headers=await api_login(web_url, email)) as http:
        assert (await http.post("/api/v1/auth/logout", params={"everywhere": "true"})).status_code == 204
    await page.get_by_label("Message", exact=True).fill("a long thought I do not want to lose")
    await page.get_by_label("Message", exact=True).press("Enter")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("Log in again")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    assert page.url == chat_url
    await expect(page.get_by_label("Message", exact=True)).to_have_value(
        "a long thought I do not want to lose"
    )


async def test_access_token_refreshes_silently(page: Page) -> None:
    await sign_up(page)
    refused = []

    async def expire_once(route: Route) -> None:
        if not refused:
            refused.append(route.request.url)
            await route.fulfill(status=401, json={"error": "unauthorized", "detail": "Token has expired"})
        else:
            await route.continue_()

    await page.route("**/api/v1/sessions?*", expire_once)
    await page.reload()
    await send(page, "still signed in")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: still signed in")
    assert refused
    # A reload signs in again from the cookie alone: the token was never in storage.
    await page.reload()
    await expect(page.get_by_role("link", name="Account")).to_be_visible()
    storage = await page.evaluate("JSON.stringify([localStorage, sessionStorage])")
    assert "ey" not in storage  # no JWT anywhere in storage


async def test_account_password_change_and_deletion(page: Page) -> None:
    email = await sign_up(page)
    await page.get_by_role("link", name="Account").click()
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password").fill("N3w!password")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_text("Password changed.")).to_be_visible()
    await page.reload()  # the new cookie signs the page in again
    await expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
    delete = page.get_by_role("button", name="Delete my account")
    await expect(delete).to_be_disabled()
    await page.get_by_label("Type your email to confirm").fill(email)
    await delete.click()
    await expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill("N3w!password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("do not match")


async def test_admin_disables_a_user_whose_open_page_stops_working(
    browser: Browser, web_url: str, app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await register_admin(app, client)
    ctx_user, user_page, _ = await new_page(browser, web_url)
    ctx_admin, admin_page, _ = await new_page(browser, web_url)
    try:
        email = await sign_up(user_page)
        await send(user_page, "hello before")
        await expect(user_page.locator("article.assistant").last).to_contain_text("Echo: hello before")

        await log_in(admin_page, admin["email"])
        await admin_page.get_by_role("link", name="Admin").click()
        await expect(admin_page.locator(".stat", has_text="Active today")).to_be_visible()
        await expect(admin_page.locator(".stat", has_text="Turns today").locator("dd")).not_to_have_text("0")
        await admin_page.get_by_role("link", name="Users").click()
        await expect(admin_page.locator("tbody tr").first).to_be_visible()
        await screenshot(admin_page, "admin-users")
        await admin_page.get_by_label("Search by email").fill(email)
        row = admin_page.locator("tr", has_text=email)
        await expect(row).to_have_count(1)
        await admin_page.get_by_label("Joined until").fill("2020-01-01")
        await expect(row).to_have_count(0)
        await admin_page.get_by_label("Joined until").fill("")
        await expect(row).to_have_count(1)
        await row.get_by_role("link", name=email).click()
        await expect(admin_page.get_by_role("heading", name=email)).to_be_visible()
        await expect(admin_page.get_by_text("not their names or what was said")).to_be_visible()
        await expect(admin_page.locator(".plain-list li")).to_have_count(1)  # the session list is there
        # Neither the session's name (its first message) nor the conversation reaches the admin.
        assert "hello before" not in await admin_page.locator("main").inner_text()
        await admin_page.get_by_role("button", name="Disable").click()
        await admin_page.get_by_role("button", name="Yes").click()
        await expect(admin_page.get_by_text("Disable: done.")).to_be_visible()
        await expect(admin_page.get_by_text(re.compile(r"user · disabled"))).to_be_visible()

        await send(user_page, "hello after")
        await expect(user_page.get_by_role("heading", name="Log in")).to_be_visible()
        await user_page.get_by_label("Email").fill(email)
        await user_page.get_by_label("Password").fill(PASSWORD)
        await user_page.get_by_role("button", name="Log in").click()
        await expect(user_page.get_by_role("alert")).to_be_visible()

        await admin_page.get_by_label("New password").fill("Res3t!password")
        await admin_page.get_by_role("button", name="Reset password").click()
        await admin_page.get_by_role("button", name="Reset it").click()
        await expect(admin_page.get_by_text("Password reset.")).to_be_visible()
        await admin_page.get_by_role("link", name="What admins did to this user").click()
        rows = admin_page.locator("tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text("user.password_reset")
        await expect(rows.nth(1)).to_contain_text("user.disabled")
        everyone = admin_page.get_by_role("button", name="Showing one user: show everyone")
        await everyone.click()
        await expect(everyone).to_have_count(0)
    finally:
        await ctx_user.close()
        await ctx_admin.close()


async def test_non_admins_get_no_admin_pages(page: Page) -> None:
    await sign_up(page)
    await expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    await page.goto("/admin/users")
    await expect(page.get_by_role("heading", name="Admins only")).to_be_visible()


async def test_dark_mode_and_a_phone_sized_screen(browser: Browser, web_url: str) -> None:
    context, page, problems = await new_page(browser, web_url, dark=True)
    try:
        await sign_up(page)
        await send(page, "show **dark** mode [calc:2+2]")
        await expect(page.locator("article.assistant").last).to_contain_text("The tool said: 4")
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(21, 23, 26)", background
        await screenshot(page, "chat-dark")
        await page.set_viewport_size({"width": 390, "height": 780})
        await expect(page.locator(".sidebar")).to_be_hidden()
        await page.get_by_role("button", name="Chats").click()
        await expect(page.locator(".sidebar")).to_be_visible()
        await screenshot(page, "phone-menu")
        assert not problems.items, problems.items
    finally:
        await context.close()


async def test_light_chat_screenshot(page: Page, fake_llm: object) -> None:
    email = new_email()
    await sign_up(page, email)
    await send(page, "What is [calc:17*23]?")
    await expect(page.locator("article.assistant").last).to_contain_text("The tool said: 391")
    await send(page, "Thanks! Show me `code`")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: Thanks!")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(255, 255, 255)", background
    await screenshot(page, "chat-light")


async def test_long_histories_load_older_messages_on_scroll(page: Page, web_url: str) -> None:
    email = await sign_up(page)
    headers = await api_login(web_url, email)
    async with httpx.AsyncClient(base_url=web_url, headers=headers, timeout=30) as http:
        session_id = (await http.post("/api/v1/sessions", json={"name": "long one"})).json()["id"]
        for i in range(32):
            r = await http.post(f"/api/v1/sessions/{session_id}/chat", json={"message": f"turn number {i}"})
            assert r.status_code == 200, r.text
    await page.goto(f"/c/{session_id}")
    messages = page.locator("article.message")
    await expect(messages.last).to_contain_text("Echo: turn number 31")
    await expect(messages).to_have_count(50)
    await expect(page.get_by_text("turn number 0", exact=True)).to_have_count(0)
    to_top = "el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')) }"
    await page.locator(".messages").evaluate(to_top)
    await expect(messages).to_have_count(64)
    await expect(messages.first).to_have_text("turn number 0")
