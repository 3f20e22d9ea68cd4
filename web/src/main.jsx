import "./app.css";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Account } from "./account.jsx";
import { AdminAudit, AdminOverview, AdminUser, AdminUsers } from "./admin.jsx";
import * as api from "./api.js";
import { Login, Signup } from "./auth.jsx";
import { Menu } from "./icons.jsx";
import { Chat } from "./chat.jsx";
import { clearDrafts } from "./drafts.js";
import { Memories } from "./memories.jsx";
import { Link, match, navigate, usePath } from "./router.jsx";
import { Sidebar } from "./sidebar.jsx";

function App() {
  const path = usePath();
  const [user, setUser] = useState(undefined); // undefined: still finding out
  const [notice, setNotice] = useState("");
  const [sessionsVersion, setSessionsVersion] = useState(0);
  const [menuOpen, setMenuOpen] = useState(false);

  const loadMe = async () => setUser(await api.get("/auth/me"));

  useEffect(() => {
    const stop = api.onSignedOut((reason) => {
      setNotice(reason);
      setUser(null);
    });
    api
      .refresh()
      .then((ok) => (ok ? loadMe() : setUser(null)))
      .catch(() => setUser(null));
    return stop;
  }, []);

  useEffect(() => setMenuOpen(false), [path]);

  if (user === undefined) return <p class="boot">Loading…</p>;

  const route = match(path);
  if (!user) {
    const onDone = async () => {
      setNotice("");
      await loadMe();
      if (route.page === "login" || route.page === "signup") navigate("/", { replace: true });
    };
    return route.page === "signup" ? (
      <Signup onDone={onDone} />
    ) : (
      <Login onDone={onDone} notice={notice} />
    );
  }

  const refreshSessions = () => setSessionsVersion((v) => v + 1);
  const logOut = async () => {
    clearDrafts();
    await api.logOut().catch(() => {});
    setUser(null);
    navigate("/login");
  };
  const isAdmin = user.role === "admin";
  let main;
  switch (route.page) {
    case "login":
    case "signup":
    case "chat":
      main = <Chat key={route.sessionId || "new"} sessionId={route.sessionId} onTurn={refreshSessions} />;
      break;
    case "memories":
      main = <Memories />;
      break;
    case "account":
      main = <Account user={user} onChanged={loadMe} onDeleted={() => setUser(null)} />;
      break;
    case "admin":
      main = isAdmin ? <AdminOverview /> : <Forbidden />;
      break;
    case "admin-users":
      main = isAdmin ? <AdminUsers /> : <Forbidden />;
      break;
    case "admin-user":
      main = isAdmin ? <AdminUser userId={route.userId} me={user} /> : <Forbidden />;
      break;
    case "admin-audit":
      main = isAdmin ? <AdminAudit /> : <Forbidden />;
      break;
    default:
      main = (
        <section class="page">
          <h1>Not found</h1>
          <p>
            There is nothing at this address. <Link href="/">Start a chat</Link>.
          </p>
        </section>
      );
  }
  return (
    <div class={`shell ${menuOpen ? "menu-open" : ""}`}>
      <header class="topbar">
        <button type="button" class="icon menu-toggle" aria-label="Chats" onClick={() => setMenuOpen(!menuOpen)}>
          <Menu />
        </button>
        <Link href="/" class="brand">
          Agent Platform
        </Link>
        <nav class="topnav" aria-label="Main">
          <Link href="/memories">Memories</Link>
          {isAdmin && <Link href="/admin">Admin</Link>}
          <Link href="/account" title={user.email}>
            Account
          </Link>
          <button type="button" class="link" onClick={logOut}>
            Log out
          </button>
        </nav>
      </header>
      <Sidebar activeId={route.sessionId} version={sessionsVersion} onChanged={refreshSessions} />
      <main class="main">{main}</main>
    </div>
  );
}

function Forbidden() {
  return (
    <section class="page">
      <h1>Admins only</h1>
      <p>This page is for admins.</p>
    </section>
  );
}

render(<App />, document.getElementById("app"));
