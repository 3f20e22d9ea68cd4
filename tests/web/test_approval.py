"""A tool call that waits for a person's approval, in the browser: approve, edit, reject, after a
reload or from another device, and dropped by a new message."""

from playwright.async_api import Browser, Locator, Page, expect

from tests.web.conftest import log_in, new_page, screenshot, send, sign_up

REMEMBER = 'Please remember [tool:remember_this:{"fact":"Likes green tea"}]'
DROPPED = (
    "(Waited for approval to run remember_this. "
    "A new message was sent before anyone decided, so it was not run.)"
)


async def ask_to_remember(page: Page) -> Locator:
    await send(page, REMEMBER)
    card = page.locator("section.approval")
    await expect(card.get_by_role("heading", name="Save to memory")).to_be_visible()
    await expect(card.locator("blockquote")).to_have_text("Likes green tea")
    return card


async def memories(page: Page) -> Locator:
    await page.get_by_role("link", name="Memories").click()
    await expect(page.get_by_role("heading", name="What the agent remembers about you")).to_be_visible()
    return page.locator("li.memory p:first-child")


async def test_approve_runs_the_call_and_the_memory_is_saved(page: Page) -> None:
    await sign_up(page)
    card = await ask_to_remember(page)
    await expect(card).to_contain_text("It waits until")
    await screenshot(page, "approval")
    await card.get_by_role("button", name="Approve").click()
    answer = page.locator("article.assistant").last
    await expect(answer).to_contain_text("The tool said: Remembered: Likes green tea")
    await expect(card).to_have_count(0)
    # Stored as a turn: it survives a reload.
    await page.reload()
    await expect(page.locator("article.assistant").last).to_contain_text("Remembered: Likes green tea")
    await expect(page.locator("section.approval")).to_have_count(0)
    await expect(await memories(page)).to_have_text(["Likes green tea"])


async def test_edit_saves_the_edited_fact_by_keyboard(page: Page) -> None:
    await sign_up(page)
    card = await ask_to_remember(page)
    await card.get_by_role("button", name="Edit").focus()
    await page.keyboard.press("Enter")
    field = card.get_by_label("Fact to save")
    await expect(field).to_be_focused()
    await expect(field).to_have_value("Likes green tea")
    await page.keyboard.press("Escape")  # back to the three choices, nothing sent
    await expect(card.get_by_role("button", name="Approve")).to_be_focused()
    await card.get_by_role("button", name="Edit").click()
    await field.fill("Likes oolong tea")
    await page.keyboard.press("Enter")
    await expect(page.locator("article.assistant").last).to_contain_text("Remembered: Likes oolong tea")
    await expect(await memories(page)).to_have_text(["Likes oolong tea"])


async def test_reject_with_a_reason_saves_nothing_and_the_agent_answers(page: Page) -> None:
    await sign_up(page)
    card = await ask_to_remember(page)
    await card.get_by_role("button", name="Reject").click()
    await card.get_by_label("Why not?").fill("I prefer coffee")
    await card.get_by_role("button", name="Reject").click()
    answer = page.locator("article.assistant").last
    await expect(answer).to_contain_text("did not approve")
    await expect(answer).to_contain_text("I prefer coffee")
    await expect(card).to_have_count(0)
    await memories(page)
    await expect(page.get_by_text("Nothing remembered yet.")).to_be_visible()


async def test_a_reload_or_another_device_shows_the_card_and_a_late_decision_reloads(
    page: Page, browser: Browser, web_url: str
) -> None:
    email = await sign_up(page)
    await ask_to_remember(page)
    url = page.url
    await page.reload()
    card = page.locator("section.approval")
    await expect(card.locator("blockquote")).to_have_text("Likes green tea")
    await expect(page.locator("article.user .plain")).to_have_text([REMEMBER])
    context, other, problems = await new_page(browser, web_url)
    try:
        await log_in(other, email)
        await other.goto(url)
        await other.locator("section.approval").get_by_role("button", name="Approve").click()
        await expect(other.locator("article.assistant").last).to_contain_text("Remembered: Likes green tea")
        # This page still shows the card: deciding again says it was decided, and shows the outcome.
        await card.get_by_role("button", name="Approve").click()
        await expect(page.get_by_role("alert")).to_contain_text("already decided")
        await expect(page.locator("article.assistant").last).to_contain_text("Remembered: Likes green tea")
        await expect(card).to_have_count(0)
        assert not problems.items, problems.items
    finally:
        await context.close()


async def test_a_new_message_drops_the_waiting_call(page: Page) -> None:
    await sign_up(page)
    await ask_to_remember(page)
    await send(page, "Never mind")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: Never mind")
    await expect(page.get_by_text(DROPPED)).to_be_visible()
    await expect(page.locator("section.approval")).to_have_count(0)
    await expect(page.locator("article.user .plain")).to_have_text([REMEMBER, "Never mind"])
    await page.reload()
    await expect(page.get_by_text(DROPPED)).to_be_visible()
    await expect(page.locator("section.approval")).to_have_count(0)
    await memories(page)
    await expect(page.get_by_text("Nothing remembered yet.")).to_be_visible()
