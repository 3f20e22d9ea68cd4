import { useEffect, useState } from "preact/hooks";
import * as api from "./api.js";
import { Confirm } from "./confirm.jsx";
import { shortTime } from "./dates.js";
import { sentence } from "./errors.js";
import { Link, navigate } from "./router.jsx";

const PAGE = 25;

function AdminNav() {
  return (
    <nav class="tabs" aria-label="Admin">
      <Link href="/admin">Overview</Link>
      <Link href="/admin/users">Users</Link>
      <Link href="/admin/audit">Audit log</Link>
    </nav>
  );
}

function useLoad(load, deps) {
  const [data, setData] = useState(null);
  const [error, setError] = useState("");
  const reload = async () => {
    try {
      setData(await load());
      setError("");
    } catch (err) {
      setError(sentence(err));
    }
  };
  useEffect(() => {
    reload();
  }, deps);
  return [data, error, reload];
}

const number = (n) => (n ?? 0).toLocaleString();

export function AdminOverview() {
  const [data, error] = useLoad(() => api.get("/admin/overview"), []);
  const cards = data && [
    ["Users", data.users_total],
    ["Active today", data.users_active_today],
    ["Turns today", data.turns_today],
    ["Tokens today", (data.input_tokens_today || 0) + (data.output_tokens_today || 0)],
    ["Errors, last hour", data.errors_last_hour],
    ["Rate-limited, last hour", data.rate_limited_last_hour],
  ];
  return (
    <section class="page admin">
      <AdminNav />
      <h1>Overview</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {cards && (
        <dl class="cards">
          {cards.map(([label, value]) => (
            <div class="stat" key={label}>
              <dt>{label}</dt>
              <dd>{number(value)}</dd>
            </div>
          ))}
        </dl>
      )}
    </section>
  );
}

function localMidnight(day, plusDays) {
  if (!day) return "";
  const date = new Date(`${day}T00:00`);
  date.setDate(date.getDate() + plusDays);
  return date.toISOString();
}

export function AdminUsers() {
  const [filters, setFilters] = useState({
    email: "",
    role: "",
    is_active: "",
    created_after: "",
    created_before: "",
    sort: "created_at",
    order: "desc",
  });
  const [offset, setOffset] = useState(0);
  const [page, error] = useLoad(
    () =>
      api.get("/admin/users", {
        ...filters,
        // Whole days in the admin's own time zone: from the first day's midnight to the midnight after the last.
        created_after: localMidnight(filters.created_after, 0),
        created_before: localMidnight(filters.created_before, 1),
        limit: PAGE,
        offset,
      }),
    [filters, offset],
  );
  const set = (name) => (event) => {
    setOffset(0);
    setFilters({ ...filters, [name]: event.target.value });
  };
  const sortBy = (column) => {
    setOffset(0);
    setFilters({ ...filters, sort: column, order: filters.sort === column && filters.order === "desc" ? "asc" : "desc" });
  };
  const arrow = (column) => (filters.sort === column ? (filters.order === "desc" ? " ↓" : " ↑") : "");
  return (
    <section class="page admin">
      <AdminNav />
      <h1>Users</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <input type="search" aria-label="Search by email" placeholder="Search by email" value={filters.email} onInput={set("email")} />
        <select aria-label="Role" value={filters.role} onChange={set("role")}>
          <option value="">Any role</option>
          <option value="user">Users</option>
          <option value="admin">Admins</option>
        </select>
        <select aria-label="Status" value={filters.is_active} onChange={set("is_active")}>
          <option value="">Active and disabled</option>
          <option value="true">Active</option>
          <option value="false">Disabled</option>
        </select>
        <label class="inline">
          Joined from
          <input type="date" aria-label="Joined from" value={filters.created_after} onInput={set("created_after")} />
        </label>
        <label class="inline">
          until
          <input type="date" aria-label="Joined until" value={filters.created_before} onInput={set("created_before")} />
        </label>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {page && (
        <>
          <table class="table">
            <thead>
              <tr>
                <th>
                  <button type="button" class="link" onClick={() => sortBy("email")}>Email{arrow("email")}</button>
                </th>
                <th>Role</th>
                <th>Status</th>
                <th>
                  <button type="button" class="link" onClick={() => sortBy("created_at")}>Created{arrow("created_at")}</button>
                </th>
                <th>
                  <button type="button" class="link" onClick={() => sortBy("last_active")}>Last active{arrow("last_active")}</button>
                </th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((u) => (
                <tr key={u.id}>
                  <td>
                    <Link href={`/admin/users/${u.id}`}>{u.email}</Link>
                  </td>
                  <td>{u.role}</td>
                  <td>{u.is_active ? "active" : "disabled"}</td>
                  <td>{shortTime(u.created_at)}</td>
                  <td>{u.last_active_at ? shortTime(u.last_active_at) : "never"}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager page={page} onOffset={setOffset} />
        </>
      )}
    </section>
  );
}

function Pager({ page, onOffset }) {
  if (page.total <= page.limit) return null;
  return (
    <p class="pager">
      <button type="button" disabled={page.offset === 0} onClick={() => onOffset(Math.max(0, page.offset - page.limit))}>
        Previous
      </button>
      {page.offset + 1}–{Math.min(page.offset + page.limit, page.total)} of {page.total}
      <button type="button" disabled={page.offset + page.limit >= page.total} onClick={() => onOffset(page.offset + page.limit)}>
        Next
      </button>
    </p>
  );
}

export function AdminUser({ userId, me }) {
  const [user, error, reload] = useLoad(() => api.get(`/admin/users/${userId}`), [userId]);
  const [sessions] = useLoad(() => api.get(`/admin/users/${userId}/sessions`, { limit: 50 }), [userId]);
  const [status, setStatus] = useState("");
  const [confirm, setConfirm] = useState(null);

  const act = async (label, action) => {
    try {
      await action();
      setStatus(`${label}: done.`);
      setConfirm(null);
      await reload();
    } catch (err) {
      setStatus(sentence(err));
    }
  };
  if (error) return <section class="page admin"><AdminNav /><p class="error" role="alert">{error}</p></section>;
  if (!user) return <section class="page admin"><AdminNav /><p class="muted">Loading…</p></section>;
  const self = user.id === me.id;
  const actions = [
    user.is_active
      ? ["Disable", () => api.post(`/admin/users/${userId}/disable`)]
      : ["Enable", () => api.post(`/admin/users/${userId}/enable`)],
    user.role === "admin"
      ? ["Make user", () => api.patch(`/admin/users/${userId}/role`, { role: "user" })]
      : ["Make admin", () => api.patch(`/admin/users/${userId}/role`, { role: "admin" })],
  ];
  return (
    <section class="page admin">
      <AdminNav />
      <h1>{user.email}</h1>
      <p>
        {user.role} · {user.is_active ? "active" : "disabled"} · joined {shortTime(user.created_at)} · last active{" "}
        {user.last_active_at ? shortTime(user.last_active_at) : "never"}
      </p>
      <dl class="cards">
        <div class="stat"><dt>Sessions</dt><dd>{number(user.usage.sessions)}</dd></div>
        <div class="stat"><dt>Messages</dt><dd>{number(user.usage.messages)}</dd></div>
        <div class="stat"><dt>Tokens overall</dt><dd>{number(user.usage.input_tokens + user.usage.output_tokens)}</dd></div>
        <div class="stat"><dt>Messages today</dt><dd>{number(user.quota.messages_today)}</dd></div>
        <div class="stat"><dt>Tokens today</dt><dd>{number(user.usage.input_tokens_today + user.usage.output_tokens_today)}</dd></div>
      </dl>
      {status && <p role="status" class="notice">{status}</p>}
      <div class="row wrap">
        {actions.map(([label, action]) =>
          confirm === label ? (
            <Confirm key={label} yes="Yes" no="No" onYes={() => act(label, action)} onNo={() => setConfirm(null)}>
              {label} {user.email}?
            </Confirm>
          ) : (
            <button type="button" key={label} disabled={self} onClick={() => setConfirm(label)}>{label}</button>
          ),
        )}
        {confirm === "Delete" ? (
          <Confirm
            onYes={() => act("Delete", () => api.del(`/admin/users/${userId}`)).then(() => navigate("/admin/users"))}
            onNo={() => setConfirm(null)}
          >
            Delete {user.email} and all their data?
          </Confirm>
        ) : (
          <button type="button" class="danger" disabled={self} onClick={() => setConfirm("Delete")}>Delete user</button>
        )}
      </div>
      <QuotaForm user={user} onSaved={(text) => { setStatus(text); reload(); }} />
      <PasswordReset userId={userId} onDone={setStatus} />
      <p>
        <Link href={`/admin/audit?target_id=${userId}`}>What admins did to this user</Link>
      </p>
      <h2>Sessions ({number(sessions?.total)})</h2>
      <p class="muted">
        Admins see when a user's sessions started, not their names or what was said in them: conversations stay
        private to their owner.
      </p>
      <ul class="plain-list">
        {sessions?.items.map((s) => (
          <li key={s.id}>
            Started {shortTime(s.created_at)}
            {s.memory_enabled ? "" : " · memory off"}
          </li>
        ))}
        {sessions && !sessions.items.length && <li class="muted">No sessions.</li>}
      </ul>
    </section>
  );
}

function QuotaForm({ user, onSaved }) {
  const [messages, setMessages] = useState(user.daily_message_quota ?? "");
  const [tokens, setTokens] = useState(user.daily_token_quota ?? "");
  const [error, setError] = useState("");
  const value = (text) => (String(text).trim() === "" ? null : Number(text));
  const save = async (event) => {
    event.preventDefault();
    try {
      await api.put(`/admin/users/${user.id}/quota`, { messages_per_day: value(messages), tokens_per_day: value(tokens) });
      setError("");
      onSaved("Quotas saved.");
    } catch (err) {
      setError(sentence(err));
    }
  };
  return (
    <form class="card" onSubmit={save}>
      <h2>Daily quotas</h2>
      <p class="muted">
        In force: {user.quota.messages_per_day ?? "unlimited"} messages and {user.quota.tokens_per_day ?? "unlimited"} tokens a day. Leave a field empty for the server's default.
      </p>
      <div class="row wrap">
        <label>
          Messages per day
          <input type="number" min="0" value={messages} onInput={(e) => setMessages(e.target.value)} />
        </label>
        <label>
          Tokens per day
          <input type="number" min="0" value={tokens} onInput={(e) => setTokens(e.target.value)} />
        </label>
      </div>
      {error && <p class="error">{error}</p>}
      <button type="submit">Save quotas</button>
    </form>
  );
}

function PasswordReset({ userId, onDone }) {
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [confirming, setConfirming] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    if (!confirming) return setConfirming(true);
    setConfirming(false);
    try {
      await api.post(`/admin/users/${userId}/password`, { password });
      setPassword("");
      setError("");
      onDone("Password reset. The user's logins have ended.");
    } catch (err) {
      setError(sentence(err));
    }
  };
  return (
    <form class="card" onSubmit={submit}>
      <h2>Reset password</h2>
      <label>
        New password
        <input type="password" autocomplete="new-password" required value={password} onInput={(e) => setPassword(e.target.value)} />
      </label>
      {error && <p class="error">{error}</p>}
      {confirming ? (
        <span class="confirm">
          Every login of this user ends.
          <button type="submit" class="danger small">Reset it</button>
          <button type="button" class="small" onClick={() => setConfirming(false)}>Cancel</button>
        </span>
      ) : (
        <button type="submit">Reset password</button>
      )}
    </form>
  );
}

const ACTIONS = ["user.created", "user.disabled", "user.enabled", "user.password_reset", "user.role_changed", "user.deleted", "user.quota_changed"];

export function AdminAudit() {
  const [action, setAction] = useState("");
  const [offset, setOffset] = useState(0);
  const [target, setTarget] = useState(() => new URLSearchParams(location.search).get("target_id") || "");
  const [page, error] = useLoad(
    () => api.get("/admin/audit", { action, target_id: target, limit: PAGE, offset }),
    [action, target, offset],
  );
  return (
    <section class="page admin">
      <AdminNav />
      <h1>Audit log</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <select aria-label="Action" value={action} onChange={(e) => { setOffset(0); setAction(e.target.value); }}>
          <option value="">Every action</option>
          {ACTIONS.map((a) => <option key={a} value={a}>{a}</option>)}
        </select>
        {target && (
          <button type="button" class="small" onClick={() => { setOffset(0); setTarget(""); history.replaceState(null, "", "/admin/audit"); }}>
            Showing one user: show everyone
          </button>
        )}
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {page && (
        <>
          <table class="table">
            <thead>
              <tr><th>When</th><th>Who</th><th>Action</th><th>Target</th><th>Detail</th></tr>
            </thead>
            <tbody>
              {page.items.map((row) => (
                <tr key={row.id}>
                  <td>{shortTime(row.created_at)}</td>
                  <td>{row.actor_email || "command line"}</td>
                  <td>{row.action}</td>
                  <td>{row.target_email || "—"}</td>
                  <td><code>{JSON.stringify(row.detail)}</code></td>
                </tr>
              ))}
            </tbody>
          </table>
          {!page.items.length && <p class="muted">No entries.</p>}
          <Pager page={page} onOffset={setOffset} />
        </>
      )}
    </section>
  );
}
