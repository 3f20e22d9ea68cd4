import { useState } from "preact/hooks";
import * as api from "./api.js";
import { sentence } from "./errors.js";
import { navigate } from "./router.jsx";

export function Account({ user, onDeleted }) {
  return (
    <section class="page account">
      <h1>Your account</h1>
      <p>
        Signed in as <strong>{user.email}</strong>
        {user.role === "admin" ? " (admin)" : ""}.
      </p>
      <PasswordForm />
      <Export />
      <DeleteAccount email={user.email} onDeleted={onDeleted} />
    </section>
  );
}

function PasswordForm() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [message, setMessage] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    try {
      await api.changePassword(current, next);
      setCurrent("");
      setNext("");
      setMessage({ ok: true, text: "Password changed. Your other devices are logged out." });
    } catch (err) {
      setMessage({ ok: false, text: err.status === 401 ? "Your current password is not right." : sentence(err) });
    }
  };
  return (
    <form class="card" onSubmit={submit}>
      <h2>Change password</h2>
      <label>
        Current password
        <input type="password" autocomplete="current-password" required value={current} onInput={(e) => setCurrent(e.target.value)} />
      </label>
      <label>
        New password
        <input type="password" autocomplete="new-password" required value={next} onInput={(e) => setNext(e.target.value)} />
      </label>
      {message && <p class={message.ok ? "notice" : "error"} role="status">{message.text}</p>}
      <button type="submit" class="primary">
        Change password
      </button>
    </form>
  );
}

function Export() {
  const [state, setState] = useState("");
  const run = async () => {
    setState("Preparing your download…");
    try {
      await api.download("/auth/me/export");
      setState("Downloaded.");
    } catch (err) {
      setState(sentence(err));
    }
  };
  return (
    <div class="card">
      <h2>Export my data</h2>
      <p class="muted">One zip file: your account, every chat with its messages (JSON and Markdown), your memories with their history, and your feedback.</p>
      <button type="button" onClick={run}>
        Download my data
      </button>
      {state && <p role="status">{state}</p>}
    </div>
  );
}

function DeleteAccount({ email, onDeleted }) {
  const [typed, setTyped] = useState("");
  const [error, setError] = useState("");
  const remove = async (event) => {
    event.preventDefault();
    try {
      await api.del("/auth/me");
      onDeleted();
      navigate("/signup", { replace: true });
    } catch (err) {
      setError(sentence(err));
    }
  };
  return (
    <form class="card danger-zone" onSubmit={remove}>
      <h2>Delete account</h2>
      <p>Deletes your account, every chat and every memory. Type your email to confirm.</p>
      <input aria-label="Type your email to confirm" value={typed} onInput={(e) => setTyped(e.target.value)} />
      {error && <p class="error">{error}</p>}
      <button type="submit" class="danger" disabled={typed.trim().toLowerCase() !== email}>
        Delete my account
      </button>
    </form>
  );
}
