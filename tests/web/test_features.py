"""Search, feedback, the per-chat memory switch and automatic names, in the browser."""

import json

from fastapi import FastAPI
from playwright.async_api import Page, expect

from tests.fake_llm import FakeLLM
from tests.web.conftest import screenshot, send, sign_up


async def test_a_new_chat_is_named_from_its_first_message(page: Page) -> None:
    await sign_up(page)
    name = "Plan a weekend in Porto with my sister, please"
    await send(page, name)
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: Plan a weekend")
    await expect(page.locator(".chat-head h1")).to_have_text(name)
    await expect(page.locator(".session-link").first).to_have_text(name)
    await send(page, "and another thing")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: and another thing")
    await page.reload()
    await expect(page.locator(".session-link").first).to_have_text(name)


async def test_search_finds_titles_and_messages_and_opens_the_chat(page: Page) -> None:
    await sign_up(page)
    await send(page, "notes about the aquarium visit")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: notes about the aquarium")
    first_chat = page.url
    await page.get_by_role("button", name="New chat", exact=True).click()
    await send(page, "something else entirely")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: something else")
    await page.get_by_label("Search chats").fill("aquarium")
    results = page.get_by_role("list", name="Search results")
    await expect(results.locator("li").first).to_be_visible()
    await expect(results.locator("mark").first).to_have_text("aquarium")
    assert await results.get_by_text("something else").count() == 0
    await screenshot(page, "search")
    await results.locator("a").first.click()
    assert page.url == first_chat
    await page.get_by_label("Search chats").fill("zebrafinch")
    await expect(page.get_by_text("Nothing found")).to_be_visible()


async def test_feedback_up_down_with_a_comment_is_kept(page: Page) -> None:
    await sign_up(page)
    await send(page, "rate this answer")
    answer = page.locator("article.assistant").last
    await expect(answer).to_contain_text("Echo: rate this answer")
    await answer.get_by_role("button", name="Bad answer").click()
    await answer.get_by_label("Feedback comment").fill("too short")
    await answer.get_by_role("button", name="Send").click()
    await expect(answer.get_by_role("button", name="Bad answer")).to_have_attribute("aria-pressed", "true")
    await page.reload()
    answer = page.locator("article.assistant").last
    await expect(answer.get_by_role("button", name="Bad answer")).to_have_attribute("aria-pressed", "true")
    await answer.get_by_role("button", name="Good answer").click()
    await expect(answer.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")
    await expect(answer.get_by_role("button", name="Bad answer")).to_have_attribute("aria-pressed", "false")
    await answer.get_by_role("button", name="Good answer").click()  # again: the rating is withdrawn
    await expect(answer.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "false")
    await page.reload()
    answer = page.locator("article.assistant").last
    await expect(answer.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "false")


async def test_memory_switch_keeps_a_chat_out_of_memory(page: Page, app: FastAPI, fake_llm: FakeLLM) -> None:
    await sign_up(page)
    await send(page, "hello there")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: hello there")
    switch = page.get_by_label("Use memory in this chat")
    await expect(switch).to_be_checked()
    async with page.expect_response(lambda r: r.request.method == "PATCH" and r.ok):
        await switch.uncheck()
    await expect(switch).not_to_be_checked()
    await page.reload()
    await expect(page.get_by_label("Use memory in this chat")).not_to_be_checked()
    extractions = len(fake_llm.extraction_requests)
    await send(page, "[remember:the vault code is 1234]")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo:")
    await app.state.runtime.memory_jobs.idle()
    assert len(fake_llm.extraction_requests) == extractions
    await page.get_by_role("link", name="Memories").click()
    await expect(page.get_by_text("Nothing remembered yet.")).to_be_visible()
    assert "vault code" not in json.dumps(fake_llm.extraction_requests)


async def test_a_memory_links_to_the_chat_it_was_learned_in(page: Page, app: FastAPI) -> None:
    await sign_up(page)
    await send(page, "by the way [remember:User plays the cello]")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo:")
    chat_url = page.url
    await app.state.runtime.memory_jobs.idle()
    await page.get_by_role("link", name="Memories").click()
    memory = page.locator("li.memory", has_text="plays the cello")
    await expect(memory).to_be_visible()
    await memory.get_by_role("link", name="Learned in this chat").click()
    assert page.url == chat_url
    await expect(page.locator("article.user .plain").first).to_contain_text("plays the cello")
