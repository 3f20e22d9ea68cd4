// What the user typed, per chat, kept in this tab's sessionStorage: a reload or an expired login
// does not lose it. (Only text the user wrote; tokens never go to storage.)
const key = (sessionId) => `draft:${sessionId || "new"}`;

export function loadDraft(sessionId) {
  try {
    return sessionStorage.getItem(key(sessionId)) || "";
  } catch {
    return "";
  }
}

export function saveDraft(sessionId, text) {
  try {
    if (text) sessionStorage.setItem(key(sessionId), text);
    else sessionStorage.removeItem(key(sessionId));
  } catch {
    // storage full or disabled: the draft lives only in the page
  }
}

// An explicit log-out: the next person on this tab must not find the last one's drafts.
export function clearDrafts() {
  try {
    for (const name of Object.keys(sessionStorage)) if (name.startsWith("draft:")) sessionStorage.removeItem(name);
  } catch {
    // storage disabled: nothing was kept
  }
}

// A first message typed on the new-chat page, handed to the chat page of the session made for it.
const pending = new Map();
export const handOver = (sessionId, text) => pending.set(sessionId, text);
export function takeOver(sessionId) {
  const text = pending.get(sessionId);
  pending.delete(sessionId);
  return text;
}
