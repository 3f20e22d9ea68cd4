"""Regenerate, edit and export in the browser."""

import json
import zipfile

from playwright.async_api import Page, expect

from tests.fake_llm import FakeLLM, Fault
from tests.web.conftest import send, sign_up


async def test_regenerate_replaces_the_last_answer(page: Page, fake_llm: FakeLLM) -> None:
    await sign_up(page)
    await send(page, "first question")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: first question")
    await send(page, "second question")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: second question")
    fake_llm.script(Fault(reply="A better second answer"))
    await page.get_by_role("button", name="Regenerate").click()
    await expect(page.locator("article.assistant").last).to_contain_text("A better second answer")
    await expect(page.locator("article.assistant")).to_have_count(2)
    await page.reload()
    await expect(page.locator("article.assistant").last).to_contain_text("A better second answer")
    await expect(page.get_by_text("Echo: second question")).to_have_count(0)
    await expect(page.locator("article.user")).to_have_count(2)
    # The agent's own state forgot the replaced answer too.
    await send(page, "third")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: third")
    prompt = json.dumps(fake_llm.chat_requests[-1]["messages"])
    assert "A better second answer" in prompt and "Echo: second question" not in prompt


async def test_edit_the_last_message_and_resend(page: Page) -> None:
    await sign_up(page)
    await send(page, "what is [calc:2+2]")
    await expect(page.locator("article.assistant").last).to_contain_text("The tool said: 4")
    await page.get_by_role("button", name="Edit message").click()
    await page.get_by_label("Edit message").fill("what is [calc:3+3]")
    await page.get_by_role("button", name="Save and send").click()
    await expect(page.locator("article.assistant").last).to_contain_text("The tool said: 6")
    await page.reload()
    await expect(page.locator("article.user .plain")).to_have_text(["what is [calc:3+3]"])
    await expect(page.locator("article.assistant")).to_have_count(1)


async def test_a_failed_regenerate_keeps_the_answer(page: Page, fake_llm: FakeLLM) -> None:
    await sign_up(page)
    await send(page, "keep me")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: keep me")
    fake_llm.script(Fault(status=500), Fault(status=500), Fault(status=500))
    await page.get_by_role("button", name="Regenerate").click()
    await expect(page.get_by_role("alert")).to_contain_text("model is not available")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: keep me")
    await page.reload()
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: keep me")


async def test_export_downloads_a_zip_of_my_data(page: Page, tmp_path: object) -> None:
    email = await sign_up(page)
    await send(page, "remember the export")
    await expect(page.locator("article.assistant").last).to_contain_text("Echo: remember the export")
    await page.get_by_role("link", name="Account").click()
    async with page.expect_download() as waiting:
        await page.get_by_role("button", name="Download my data").click()
    download = await waiting.value
    assert download.suggested_filename.startswith("export-") and download.suggested_filename.endswith(".zip")
    path = await download.path()
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert "account.json" in names and "memories.json" in names
        assert json.loads(archive.read("account.json"))["email"] == email
        transcripts = [n for n in names if n.endswith(".md")]
        assert len(transcripts) == 1
        assert "remember the export" in archive.read(transcripts[0]).decode()
    await expect(page.get_by_text("Downloaded.")).to_be_visible()
