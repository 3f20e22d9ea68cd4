import { useEffect, useState } from "preact/hooks";
import * as api from "./api.js";
import { Confirm } from "./confirm.jsx";
import { shortTime } from "./dates.js";
import { sentence } from "./errors.js";
import { Link } from "./router.jsx";

const PAGE = 50;

export function Memories() {
  const [items, setItems] = useState(null);
  const [total, setTotal] = useState(0);
  const [query, setQuery] = useState("");
  const [searched, setSearched] = useState(""); // the query the list shows the results of
  const [error, setError] = useState("");
  const [confirmAll, setConfirmAll] = useState(false);

  const load = async (offset = 0) => {
    try {
      const page = await api.get("/memories", { limit: PAGE, offset });
      setItems((old) => (offset ? [...old, ...page.items] : page.items));
      setTotal(page.total);
      setSearched("");
      setError("");
    } catch (err) {
      setError(sentence(err));
      setItems((old) => old || []);
    }
  };
  const search = async (event) => {
    event.preventDefault();
    if (!query.trim()) return load();
    try {
      const found = await api.get("/memories/search", { q: query.trim(), limit: PAGE });
      setItems(found.items);
      setTotal(found.items.length);
      setSearched(query.trim());
      setError("");
    } catch (err) {
      setError(sentence(err));
    }
  };
  const forgetAll = async () => {
    try {
      await api.del("/memories");
      setConfirmAll(false);
      setQuery("");
      await load();
    } catch (err) {
      setError(sentence(err));
    }
  };
  useEffect(() => {
    load();
  }, []);

  return (
    <section class="page memories">
      <h1>What the agent remembers about you</h1>
      <p class="muted">
        The agent learns these from your chats and uses them in every chat where memory is on. Edit or delete any of them.
      </p>
      <form class="row" onSubmit={search} role="search">
        <input type="search" aria-label="Search memories" placeholder="Search memories" value={query} onInput={(e) => setQuery(e.target.value)} />
        <button type="submit">Search</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {items === null ? (
        <p class="muted">Loading…</p>
      ) : items.length ? (
        <ul class="memory-list">
          {items.map((m) => (
            <MemoryItem key={m.id} memory={m} onChanged={() => load()} />
          ))}
        </ul>
      ) : (
        <p class="muted">Nothing remembered{searched ? " matches that search" : " yet"}.</p>
      )}
      {items && items.length < total && (
        <button type="button" class="link" onClick={() => load(items.length)}>
          Show more
        </button>
      )}
      <div class="danger-zone">
        {confirmAll ? (
          <p class="confirm">
            Forget every memory? This cannot be undone.
            <button type="button" class="danger" onClick={forgetAll}>
              Forget everything
            </button>
            <button type="button" onClick={() => setConfirmAll(false)}>
              Keep them
            </button>
          </p>
        ) : (
          <button type="button" class="danger" onClick={() => setConfirmAll(true)} disabled={!items?.length}>
            Forget everything
          </button>
        )}
      </div>
    </section>
  );
}

function MemoryItem({ memory, onChanged }) {
  const [mode, setMode] = useState("view");
  const [text, setText] = useState(memory.text);
  const [error, setError] = useState("");
  const save = async (event) => {
    event.preventDefault();
    try {
      await api.patch(`/memories/${memory.id}`, { text: text.trim() });
      setMode("view");
      onChanged();
    } catch (err) {
      setError(sentence(err));
    }
  };
  const remove = async () => {
    try {
      await api.del(`/memories/${memory.id}`);
      onChanged();
    } catch (err) {
      setError(sentence(err));
    }
  };
  return (
    <li class="memory">
      {mode === "edit" ? (
        <form class="row" onSubmit={save}>
          <input aria-label="Memory text" value={text} onInput={(e) => setText(e.target.value)} required />
          <button type="submit" class="primary small">
            Save
          </button>
          <button type="button" class="small" onClick={() => setMode("view")}>
            Cancel
          </button>
        </form>
      ) : (
        <>
          <p>{memory.text}</p>
          <p class="meta">
            {memory.session_id ? (
              <Link href={`/c/${memory.session_id}`}>Learned in this chat</Link>
            ) : (
              <span>Added by hand</span>
            )}
            {memory.updated_at || memory.created_at ? ` · ${shortTime(memory.updated_at || memory.created_at)}` : ""}
          </p>
          {mode === "confirm" ? (
            <Confirm onYes={remove} onNo={() => setMode("view")}>
              Delete this memory?
            </Confirm>
          ) : (
            <span class="actions">
              <button type="button" class="small" onClick={() => setMode("edit")}>
                Edit
              </button>
              <button type="button" class="small" onClick={() => setMode("confirm")}>
                Delete
              </button>
            </span>
          )}
        </>
      )}
      {error && <p class="error">{error}</p>}
    </li>
  );
}
