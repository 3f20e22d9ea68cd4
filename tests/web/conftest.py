"""The web app in headless Chromium (Debian's package, driven by Playwright), served by the shared
app over real HTTP on loopback, against the fake LLM and the embedded PostgreSQL."""

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright, expect

from app.api.web import STATIC_DIR
from app.config import PROJECT_ROOT
from tests.conftest import PASSWORD, serve

# CI keeps this folder; the README shows what is in it.
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
# What the browser needs here: no sandbox as root, and no calls to outside hosts of its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("The browser tests need Debian's chromium package: apt-get install chromium")
    return found


@pytest.fixture(scope="session")
async def web_url(app: FastAPI) -> AsyncIterator[str]:
    if not (STATIC_DIR / "index.html").is_file():
        pytest.fail("The web app is not built: run `make web` (make test does)")
    async with serve(app) as url:
        yield url


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


class PageProblems:
    """What the page reported that a user would never see: script errors and CSP violations."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.items.append(f"{message.text} at {message.location}")

    def error(self, error: Exception) -> None:
        self.items.append(str(error))


async def new_page(
    browser: Browser, web_url: str, *, dark: bool = False
) -> tuple[BrowserContext, Page, PageProblems]:
    context = await browser.new_context(
        base_url=web_url,
        viewport={"width": 1280, "height": 820},
        color_scheme="dark" if dark else "light",
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    problems = PageProblems()
    page.on("console", problems.console)
    page.on("pageerror", problems.error)
    return context, page, problems


@pytest.fixture
async def page(browser: Browser, web_url: str) -> AsyncIterator[Page]:
    context, opened, problems = await new_page(browser, web_url)
    yield opened
    await context.close()
    assert not problems.items, problems.items


def new_email() -> str:
    return f"web-{uuid.uuid4().hex[:10]}@example.com"


async def sign_up(page: Page, email: str | None = None) -> str:
    email = email or new_email()
    await page.goto("/signup")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await page.get_by_role("heading", name="New chat").wait_for()
    return email


async def log_in(page: Page, email: str) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.get_by_role("link", name="Account").wait_for()


async def send(page: Page, text: str) -> None:
    # As a person would: once the previous answer is over (the Stop button is Send again).
    await expect(page.get_by_role("button", name="Send")).to_be_visible()
    box = page.get_by_label("Message", exact=True)
    await box.fill(text)
    await box.press("Enter")


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=Path(SCREENSHOTS / f"{name}.png"))
