import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import * as api from "./api.js";
import { Approval } from "./approval.jsx";
import { handOver, loadDraft, saveDraft, takeOver } from "./drafts.js";
import { sentence } from "./errors.js";
import { Pencil } from "./icons.jsx";
import { handleCopyClick } from "./markdown.js";
import { Feedback, Markdown, ToolSteps } from "./message.jsx";
import { navigate } from "./router.jsx";

const PAGE = 50;
let nextKey = 0;
const keyed = (message) => ({ ...message, key: message.key ?? `m${nextKey++}` });
const streaming = () => keyed({ role: "assistant", content: "", tool_calls: [], status: "streaming" });

// The transcript's last page and the session's latest run. A run waiting for approval is no turn of
// the transcript yet: its message and its card go last (in place of the turns a fork replaces).
async function lastPage(sessionId) {
  const [head, runs] = await Promise.all([
    api.get(`/sessions/${sessionId}/messages`, { limit: PAGE, offset: 0 }),
    api.get(`/sessions/${sessionId}/runs`, { limit: 1 }),
  ]);
  let page = head;
  if (head.total > PAGE) {
    page = await api.get(`/sessions/${sessionId}/messages`, { limit: PAGE, offset: head.total - PAGE });
  }
  let items = page.items.map(keyed);
  const run = runs.items[0];
  const expires = run?.interrupt?.expires_at;
  if (run?.status === "interrupted" && run.interrupt && (!expires || new Date(expires) > Date.now())) {
    const replaced = items.findIndex((m) => m.id === run.from_turn);
    if (run.from_turn != null && replaced >= 0) items = items.slice(0, replaced);
    const interrupt = { run_id: run.id, ...run.interrupt };
    items.push(keyed({ role: "user", content: run.message ?? "" }), { ...streaming(), status: "waiting", interrupt });
  }
  return { items, offset: page.offset, run };
}

export function Chat({ sessionId, onTurn }) {
  const [session, setSession] = useState(null);
  const [messages, setMessages] = useState([]);
  const [firstOffset, setFirstOffset] = useState(0); // offset of the oldest message loaded
  const [loading, setLoading] = useState(Boolean(sessionId));
  const [draft, setDraft] = useState(() => loadDraft(sessionId));
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [editing, setEditing] = useState(false);
  const abort = useRef(null);
  const resumed = useRef(null); // the run whose continuation streams: Stop cancels it on the server
  const list = useRef(null);
  const stick = useRef(true); // keep the view at the bottom while the reader is there
  const shown = useRef(messages);
  shown.current = messages;

  useEffect(() => {
    if (!sessionId) return;
    let live = true;
    (async () => {
      try {
        const [found, page] = await Promise.all([api.get(`/sessions/${sessionId}`), lastPage(sessionId)]);
        if (!live) return;
        setSession(found);
        setMessages(page.items);
        setFirstOffset(page.offset);
      } catch (err) {
        if (live) setError(err.status === 404 ? "This chat does not exist, or it was deleted." : sentence(err));
      } finally {
        if (live) setLoading(false);
      }
      const first = takeOver(sessionId);
      if (live && first) send({ message: first });
    })();
    return () => {
      live = false;
      abort.current?.abort();
    };
  }, [sessionId]);

  useEffect(() => saveDraft(sessionId, draft), [draft, sessionId]);

  useEffect(() => {
    const onKey = (event) => {
      if (event.key === "Escape" && abort.current) stop();
    };
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  }, []);

  useLayoutEffect(() => {
    if (stick.current && list.current) list.current.scrollTop = list.current.scrollHeight;
  }, [messages]);

  const onScroll = () => {
    const el = list.current;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 80 && firstOffset > 0 && !loading) loadOlder();
  };

  const loadOlder = async () => {
    setLoading(true);
    const offset = Math.max(0, firstOffset - PAGE);
    try {
      const page = await api.get(`/sessions/${sessionId}/messages`, { limit: firstOffset - offset, offset });
      const el = list.current;
      const fromBottom = el.scrollHeight - el.scrollTop;
      setMessages((old) => [...page.items.map(keyed), ...old]);
      setFirstOffset(offset);
      requestAnimationFrame(() => {
        el.scrollTop = el.scrollHeight - fromBottom;
      });
    } catch (err) {
      setError(sentence(err));
    } finally {
      setLoading(false);
    }
  };

  const update = (key, change) =>
    setMessages((old) => old.map((m) => (m.key === key ? { ...m, ...(typeof change === "function" ? change(m) : change) } : m)));

  // A run's events into the reply `key`: "done" once stored, "waiting" when a tool call waits for
  // approval, null when the stream ended before either (`seen.id`: the last event id read).
  async function streamInto(key, path, json, controller, seen = {}) {
    let outcome = null;
    let waiting = null;
    try {
      await api.stream(path, json, {
        signal: controller.signal,
        onEvent(name, data, id) {
          seen.id = id ?? seen.id;
          if (name !== "interrupt") waiting = null; // a replayed pause the run went on from
          if (name === "token") update(key, (m) => ({ content: m.content + data.content }));
          else if (name === "tool") update(key, (m) => ({ tool_calls: [...m.tool_calls, data] }));
          else if (name === "reset") update(key, { content: "" });
          else if (name === "interrupt") waiting = data;
          else if (name === "done") {
            outcome = "done";
            update(key, { id: data.message_id, content: data.reply, tool_calls: data.tool_calls, status: "done" });
            // The turn is stored and the session free: the next message may go while this stream closes.
            if (abort.current === controller) abort.current = null;
            setBusy(false);
          } else if (name === "error") throw new api.ApiError(200, data.error, data.detail, null);
        },
      });
    } catch (err) {
      if (!outcome) throw err; // stored already: a connection lost while the stream closed changes nothing
    }
    if (!outcome && waiting) {
      update(key, { status: "waiting", interrupt: waiting });
      outcome = "waiting";
    }
    if (!outcome && !json) return null;
    if (!outcome) throw new api.ApiError(0, "agent_error", "The answer ended early.", null);
    return outcome;
  }

  // The conversation as the server has it now; `following`: a run to show and stream if it is running.
  async function reload(following) {
    try {
      const page = await lastPage(sessionId);
      const run = page.run;
      const reply = streaming();
      const asked = keyed({ role: "user", content: run?.message ?? "" });
      const live = following && run?.id === following && (run.status === "running" || run.status === "pending");
      setMessages(live ? [...page.items, asked, reply] : page.items);
      setFirstOffset(page.offset);
      if (live) follow(reply.key, asked.key, following);
    } catch (err) {
      setError(sentence(err));
    }
  }

  // A person's answer to the tool calls a run waits on; the run then goes on on the server.
  async function decide(reply, answer) {
    setError("");
    const runId = reply.interrupt.run_id;
    try {
      await api.post(`/sessions/${sessionId}/runs/${runId}/resume`, answer);
    } catch (err) {
      if (err.error !== "run_not_waiting") throw err; // the card shows it
      setError(sentence(err)); // decided elsewhere, or dropped
      await reload(runId);
      return;
    }
    const at = shown.current.findIndex((m) => m.key === reply.key);
    update(reply.key, { status: "streaming", interrupt: null, content: "" });
    follow(reply.key, shown.current[at - 1]?.key, runId);
  }

  // A run's continuation, from its event log, rendered as a chat stream is.
  async function follow(key, userKey, runId) {
    setBusy(true);
    stick.current = true;
    const controller = new AbortController();
    abort.current = controller;
    resumed.current = runId;
    let outcome = null;
    try {
      // A run's stream closes after a while (RUN_STREAM_MAX_SECONDS): go on after the last event.
      const seen = { id: 0 };
      for (let pass = 0; pass < 10 && !outcome; pass++) {
        const last = seen.id;
        outcome = await streamInto(key, `/sessions/${sessionId}/runs/${runId}/stream?after=${last}`, undefined, controller, seen);
        if (!outcome && seen.id === last) throw new api.ApiError(0, "agent_error", "The answer ended early.", null);
      }
      if (outcome !== "done") return;
      onTurn?.();
      const text = shown.current.find((m) => m.key === userKey)?.content;
      if (userKey) learnUserMessageId(userKey, text);
      api.get(`/sessions/${sessionId}`).then(setSession, () => {});
    } catch (err) {
      if (controller.signal.aborted && !(err instanceof api.ApiError)) {
        update(key, { status: "stopped" }); // Stop cancelled the run: nothing of it is stored
        if (userKey) update(userKey, { status: "stopped" });
      } else {
        setError(sentence(err));
        reload();
      }
    } finally {
      if (resumed.current === runId) resumed.current = null;
      if (abort.current === controller || (abort.current === null && !outcome)) {
        abort.current = null;
        setBusy(false);
      }
    }
  }

  // One turn: a new message, or (replace) the last turn again with the same or an edited message.
  async function send({ message, replace = false }) {
    setError("");
    setBusy(true);
    stick.current = true;
    const controller = new AbortController();
    abort.current = controller;
    // A new message drops a tool call still waiting for approval: the transcript then says so.
    const dropping = shown.current.some((m) => m.status === "waiting");
    // The transcript to restore if a replacement fails.
    const before = shown.current.map((m) => (m.status === "waiting" ? { ...m, status: "dropped" } : m));
    const reply = streaming();
    const asked = keyed({ role: "user", content: message });
    let replaces;
    if (replace) {
      const lastUser = before.findLastIndex((m) => m.role === "user");
      replaces = before[lastUser]?.id ?? undefined;
      const kept = before.slice(0, lastUser + 1);
      if (message !== undefined) kept[lastUser] = { ...kept[lastUser], content: message };
      setMessages([...kept, reply]);
    } else {
      setMessages([...before, asked, reply]);
    }
    let done = false;
    try {
      const outcome = await streamInto(
        reply.key,
        `/sessions/${sessionId}/chat/stream`,
        replace
          ? { replace_last_turn: true, replaces_message_id: replaces, ...(message !== undefined && { message }) }
          : { message },
        controller,
      );
      done = true;
      if (dropping) reload();
      onTurn?.();
      if (outcome === "waiting") return;
      const userKey = replace ? before[before.findLastIndex((m) => m.role === "user")]?.key : asked.key;
      if (userKey) learnUserMessageId(userKey, message ?? before.findLast((m) => m.role === "user")?.content);
      // The first turn names a new session (on the server, from the message): show the name.
      if (!before.length) api.get(`/sessions/${sessionId}`).then(setSession, () => {});
    } catch (err) {
      if (done) return; // stored already: a connection lost while the stream closed changes nothing
      if (controller.signal.aborted && !(err instanceof api.ApiError)) {
        // A stopped replacement changed nothing on the server: show the turn it kept.
        if (replace) setMessages(before);
        else {
          update(reply.key, { status: "stopped" });
          update(asked.key, { status: "stopped" });
        }
      } else {
        setError(sentence(err));
        if (dropping) reload();
        if (replace) setMessages(before);
        else {
          setMessages((old) => old.filter((m) => m.key !== reply.key && m.key !== asked.key));
          if (message !== undefined && !replace) {
            // Back in the box, and in storage at once: a lost login unmounts this page right now.
            setDraft((d) => d || message);
            if (!loadDraft(sessionId)) saveDraft(sessionId, message);
          }
        }
      }
    } finally {
      // Only if no newer turn has started since this one's `done`.
      if (abort.current === controller || (abort.current === null && !done)) {
        abort.current = null;
        setBusy(false);
      }
    }
  }

  // The stored id of the turn's user message (the stream gives the reply's only): regenerate and edit
  // name it, so that a turn added meanwhile elsewhere is never replaced unseen.
  async function learnUserMessageId(userKey, text) {
    try {
      const head = await api.get(`/sessions/${sessionId}/messages`, { limit: 1, offset: 0 });
      const tail = await api.get(`/sessions/${sessionId}/messages`, { limit: 2, offset: Math.max(0, head.total - 2) });
      const stored = tail.items.find((item) => item.role === "user" && item.content === text);
      if (stored) update(userKey, { id: stored.id });
    } catch {
      // without the id, a replacement replaces whatever turn is last
    }
  }

  function stop() {
    // A chat stream's run ends with its connection; a resumed run goes on without one.
    if (resumed.current) api.post(`/sessions/${sessionId}/runs/${resumed.current}/cancel`).catch(() => {});
    abort.current?.abort();
  }

  const submit = async (event) => {
    event?.preventDefault();
    const text = draft.trim();
    if (!text || busy) return;
    if (!sessionId) {
      try {
        setBusy(true);
        const created = await api.post("/sessions", {});
        setDraft("");
        saveDraft(null, "");
        handOver(created.id, text);
        onTurn?.();
        navigate(`/c/${created.id}`, { replace: true });
      } catch (err) {
        setError(sentence(err));
        setBusy(false);
      }
      return;
    }
    setDraft("");
    await send({ message: text });
  };

  const onKeyDown = (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  };

  const toggleMemory = async () => {
    try {
      setSession(await api.patch(`/sessions/${sessionId}`, { memory_enabled: !session.memory_enabled }));
    } catch (err) {
      setError(sentence(err));
    }
  };

  const lastUser = messages.findLastIndex((m) => m.role === "user" && m.status !== "stopped");
  const lastAssistant = messages.findLastIndex((m) => m.role === "assistant");
  const canReplace = !busy && lastUser >= 0 && lastAssistant > lastUser && messages[lastAssistant].status === "done";

  return (
    <section class="chat">
      <header class="chat-head">
        <h1>{session ? session.name : sessionId ? "" : "New chat"}</h1>
        {session && "memory_enabled" in session && (
          <label class="switch" title="When off, the agent neither uses nor learns memories in this chat">
            <input type="checkbox" checked={session.memory_enabled} onChange={toggleMemory} />
            Use memory in this chat
          </label>
        )}
      </header>
      <div class="messages" ref={list} onScroll={onScroll} onClick={handleCopyClick} aria-live="polite">
        {loading && <p class="muted center">Loading…</p>}
        {!loading && !messages.length && !error && (
          <div class="empty">
            <h2>How can I help?</h2>
            <p class="muted">I remember what you tell me across chats. Ask me to calculate, or about the time anywhere.</p>
          </div>
        )}
        {messages.map((m, i) =>
          m.role === "user" ? (
            <UserMessage
              key={m.key}
              message={m}
              editable={i === lastUser && canReplace}
              editing={editing && i === lastUser}
              setEditing={setEditing}
              onResend={(text) => {
                setEditing(false);
                send({ message: text, replace: true });
              }}
            />
          ) : (
            <article key={m.key} class={`message assistant ${m.status || "done"}`}>
              <ToolSteps calls={m.tool_calls} />
              {m.content ? <Markdown text={m.content} /> : m.status === "streaming" && <p class="typing">Thinking…</p>}
              {m.status === "stopped" && <p class="stopped">Stopped. This answer was not saved.</p>}
              {m.status === "waiting" && <Approval interrupt={m.interrupt} onDecide={(answer) => decide(m, answer)} />}
              {m.status === "dropped" && <p class="stopped">Not run: a new message was sent first.</p>}
              {(!m.status || m.status === "done") && (
                <footer class="message-actions">
                  {m.id != null && <Feedback sessionId={sessionId} message={m} />}
                  {i === lastAssistant && canReplace && (
                    <button type="button" class="small" onClick={() => send({ replace: true })}>
                      Regenerate
                    </button>
                  )}
                </footer>
              )}
            </article>
          ),
        )}
      </div>
      {error && (
        <p class="error banner" role="alert">
          {error}
        </p>
      )}
      <form class="composer" onSubmit={submit}>
        <textarea
          aria-label="Message"
          placeholder="Message the agent (Enter sends, Shift+Enter for a new line)"
          rows={2}
          value={draft}
          onInput={(e) => setDraft(e.target.value)}
          onKeyDown={onKeyDown}
        />
        {busy && abort.current ? (
          <button type="button" class="danger" onClick={stop} title="Stop (Esc)">
            Stop
          </button>
        ) : (
          <button type="submit" class="primary" disabled={busy || !draft.trim()}>
            Send
          </button>
        )}
      </form>
    </section>
  );
}

function UserMessage({ message, editable, editing, setEditing, onResend }) {
  const [text, setText] = useState(message.content);
  if (editing) {
    return (
      <form
        class="message user editing"
        onSubmit={(e) => {
          e.preventDefault();
          if (text.trim()) onResend(text.trim());
        }}
      >
        <textarea aria-label="Edit message" value={text} onInput={(e) => setText(e.target.value)} rows={3} />
        <div class="row">
          <button type="submit" class="primary small">
            Save and send
          </button>
          <button type="button" class="small" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </div>
      </form>
    );
  }
  return (
    <article class={`message user ${message.status || ""}`}>
      <p class="plain">{message.content}</p>
      {editable && (
        <button
          type="button"
          class="icon edit"
          aria-label="Edit message"
          title="Edit and resend"
          onClick={() => {
            setText(message.content);
            setEditing(true);
          }}
        >
          <Pencil />
        </button>
      )}
    </article>
  );
}
