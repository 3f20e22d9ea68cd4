// The app's paths (app/api/web.py serves the page at each of them) and navigation between them.
import { useEffect, useState } from "preact/hooks";

const listeners = new Set();

export function navigate(target, { replace = false } = {}) {
  if (target === location.pathname + location.search) return;
  history[replace ? "replaceState" : "pushState"](null, "", target);
  for (const listener of listeners) listener(location.pathname);
}

export function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const onPop = () => setPath(location.pathname);
    listeners.add(setPath);
    addEventListener("popstate", onPop);
    return () => {
      listeners.delete(setPath);
      removeEventListener("popstate", onPop);
    };
  }, []);
  return path;
}

// Same-page links: a plain <a href> that navigates without reloading.
export function Link({ href, children, ...rest }) {
  const onClick = (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(href);
  };
  return (
    <a href={href} onClick={onClick} {...rest}>
      {children}
    </a>
  );
}

export function match(path) {
  let m;
  if ((m = /^\/c\/([0-9a-f-]{36})$/.exec(path))) return { page: "chat", sessionId: m[1] };
  if ((m = /^\/admin\/users\/([0-9a-f-]{36})$/.exec(path))) return { page: "admin-user", userId: m[1] };
  const pages = {
    "/": "chat",
    "/login": "login",
    "/signup": "signup",
    "/memories": "memories",
    "/account": "account",
    "/admin": "admin",
    "/admin/users": "admin-users",
    "/admin/audit": "admin-audit",
  };
  return { page: pages[path] || "not-found" };
}
