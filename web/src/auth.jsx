import { useState } from "preact/hooks";
import * as api from "./api.js";
import { sentence } from "./errors.js";
import { Link } from "./router.jsx";

function CredentialsForm({ title, submitLabel, onSubmit, footer, notice, passwordHint }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      await onSubmit(email.trim(), password);
    } catch (err) {
      setError(err.status === 401 ? "That email and password do not match an account." : sentence(err));
      setBusy(false);
    }
  };
  return (
    <main class="auth">
      <form class="card" onSubmit={submit}>
        <h1>{title}</h1>
        {notice && <p class="notice" role="status">{notice}</p>}
        <label>
          Email
          <input type="email" name="email" autocomplete="email" required value={email} onInput={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password
          <input
            type="password"
            name="password"
            autocomplete={passwordHint ? "new-password" : "current-password"}
            required
            value={password}
            onInput={(e) => setPassword(e.target.value)}
          />
        </label>
        {passwordHint && <p class="hint">{passwordHint}</p>}
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" class="primary" disabled={busy}>
          {submitLabel}
        </button>
        <p class="muted">{footer}</p>
      </form>
    </main>
  );
}

export function Login({ onDone, notice }) {
  return (
    <CredentialsForm
      title="Log in"
      submitLabel="Log in"
      notice={notice}
      onSubmit={async (email, password) => {
        await api.logIn(email, password);
        await onDone();
      }}
      footer={
        <>
          No account yet? <Link href="/signup">Sign up</Link>
        </>
      }
    />
  );
}

export function Signup({ onDone }) {
  return (
    <CredentialsForm
      title="Create your account"
      submitLabel="Sign up"
      passwordHint="At least 8 characters, with an uppercase and a lowercase letter, a digit and a symbol."
      onSubmit={async (email, password) => {
        await api.signUp(email, password);
        await onDone();
      }}
      footer={
        <>
          Have an account? <Link href="/login">Log in</Link>
        </>
      }
    />
  );
}
