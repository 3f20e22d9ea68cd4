import { useEffect, useRef, useState } from "preact/hooks";
import * as api from "./api.js";
import { Confirm } from "./confirm.jsx";
import { groupByDate } from "./dates.js";
import { sentence } from "./errors.js";
import { Pencil, Trash } from "./icons.jsx";
import { Link, navigate } from "./router.jsx";

const PAGE = 100;

export function Sidebar({ activeId, version, onChanged }) {
  const [sessions, setSessions] = useState([]);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState("");
  const [query, setQuery] = useState("");

  const load = async (offset = 0) => {
    try {
      const page = await api.get("/sessions", { limit: PAGE, offset });
      setSessions((old) => (offset ? [...old, ...page.items] : page.items));
      setTotal(page.total);
      setError("");
    } catch (err) {
      setError(sentence(err));
    }
  };
  useEffect(() => {
    load();
  }, [version]);

  return (
    <aside class="sidebar" aria-label="Chats">
      <button type="button" class="primary new-chat" onClick={() => navigate("/")}>
        New chat
      </button>
      <input
        type="search"
        class="search"
        placeholder="Search chats"
        aria-label="Search chats"
        value={query}
        onInput={(e) => setQuery(e.target.value)}
      />
      {error && <p class="error">{error}</p>}
      {query.trim() ? (
        <SearchResults query={query.trim()} />
      ) : (
        <nav class="sessions">
          {groupByDate(sessions).map((group) => (
            <section key={group.label}>
              <h2>{group.label}</h2>
              <ul>
                {group.items.map((s) => (
                  <SessionItem key={s.id} session={s} active={s.id === activeId} onChanged={onChanged} />
                ))}
              </ul>
            </section>
          ))}
          {!sessions.length && !error && <p class="muted">No chats yet.</p>}
          {sessions.length < total && (
            <button type="button" class="link" onClick={() => load(sessions.length)}>
              Show more
            </button>
          )}
        </nav>
      )}
    </aside>
  );
}

function SessionItem({ session, active, onChanged }) {
  const [mode, setMode] = useState("view"); // view | rename | confirm
  const [name, setName] = useState(session.name);
  const [error, setError] = useState("");
  const input = useRef(null);
  useEffect(() => {
    if (mode === "rename") input.current?.select();
  }, [mode]);

  const rename = async () => {
    const next = name.trim();
    if (!next || next === session.name) return setMode("view");
    try {
      await api.patch(`/sessions/${session.id}`, { name: next });
      setMode("view");
      onChanged();
    } catch (err) {
      setError(sentence(err));
    }
  };
  const remove = async () => {
    try {
      await api.del(`/sessions/${session.id}`);
      if (active) navigate("/", { replace: true });
      onChanged();
    } catch (err) {
      setError(sentence(err));
      setMode("view");
    }
  };

  return (
    <li class={`session ${active ? "active" : ""}`}>
      {mode === "rename" ? (
        <input
          ref={input}
          class="rename"
          aria-label="Chat name"
          maxLength={200}
          value={name}
          onInput={(e) => setName(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter") rename();
            if (e.key === "Escape") {
              setName(session.name);
              setMode("view");
            }
          }}
          onBlur={rename}
        />
      ) : (
        <Link href={`/c/${session.id}`} class="session-link" aria-current={active ? "page" : undefined}>
          {session.name}
        </Link>
      )}
      {mode === "confirm" ? (
        <Confirm onYes={remove} onNo={() => setMode("view")}>
          Delete?
        </Confirm>
      ) : (
        mode === "view" && (
          <span class="actions">
            <button type="button" class="icon" title="Rename" aria-label={`Rename ${session.name}`} onClick={() => setMode("rename")}>
              <Pencil />
            </button>
            <button type="button" class="icon" title="Delete" aria-label={`Delete ${session.name}`} onClick={() => setMode("confirm")}>
              <Trash />
            </button>
          </span>
        )
      )}
      {error && <p class="error">{error}</p>}
    </li>
  );
}

function SearchResults({ query }) {
  const [hits, setHits] = useState(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState("");
  useEffect(() => {
    const controller = new AbortController();
    const timer = setTimeout(async () => {
      try {
        const page = await api.get("/sessions/search", { q: query, limit: 30 }, { signal: controller.signal });
        setHits(page.items);
        setTotal(page.total);
        setError("");
      } catch (err) {
        if (err.name !== "AbortError") setError(sentence(err));
      }
    }, 250);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [query]);
  if (error) return <p class="error">{error}</p>;
  if (hits === null) return <p class="muted">Searching…</p>;
  if (!hits.length) return <p class="muted">Nothing found for “{query}”.</p>;
  return (
    <ul class="hits" aria-label="Search results">
      {hits.map((hit) => (
        <li key={`${hit.session_id}-${hit.message_id ?? "title"}`}>
          <Link href={`/c/${hit.session_id}`}>
            <strong>{hit.session_name}</strong>
            <span class="snippet">
              <Highlight text={hit.snippet} query={query} />
            </span>
          </Link>
        </li>
      ))}
      {total > hits.length && <li class="muted">and {total - hits.length} more: refine the search</li>}
    </ul>
  );
}

// The query's words marked in a plain-text snippet (text nodes only: nothing here is HTML).
function Highlight({ text, query }) {
  const words = query.split(/\s+/).filter(Boolean).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  if (!words.length || !text) return text || "";
  const parts = text.split(new RegExp(`(${words.join("|")})`, "gi"));
  return parts.map((part, i) => (i % 2 ? <mark key={i}>{part}</mark> : part));
}
