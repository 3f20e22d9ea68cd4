// The API's typed errors as sentences a person reads; never the JSON.
const SENTENCES = {
  thread_busy: "The agent is still answering in this chat. Wait for it to finish, or stop it first.",
  quota_exceeded: "You have reached your usage limit for now. It resets later; an admin can raise it.",
  llm_unavailable: "The model is not available right now. Try again in a moment.",
  llm_timeout: "The model took too long to answer. Try again.",
  agent_error: "The agent could not finish this answer. Try again.",
  too_many_streams: "You have too many answers in progress at once. Wait for one to finish.",
  login_locked: "Too many failed log-ins. Wait a while before trying again.",
  database_unavailable: "The service cannot reach its database right now. Try again shortly.",
  shutting_down: "The service is restarting. Try again in a few seconds.",
  run_cancelled: "This answer was stopped.",
  run_lost: "The server answering this message stopped. Send it again.",
  service_unavailable: "The service is unavailable right now. Try again shortly.",
  memory_disabled: "Long-term memory is switched off on this service.",
  csrf_failed: "Your browser sent a request this page did not make. Reload the page.",
  not_found: "That was not found. It may have been deleted.",
  no_turn_to_replace: "There is no answer to replace yet.",
  turn_changed: "This chat changed in another tab or device. Reload it to see its latest answer.",
  turn_not_found: "That message is no longer in this chat. Reload it to see its latest turns.",
  queue_full: "Too many messages are already waiting in this chat. Wait for one to start.",
  run_not_waiting: "This was already decided, in another tab or device, or it expired. The chat now shows where it stands.",
  approval_dropped: "This tool call was not run: a new message was sent, or the answer was stopped, before anyone decided.",
  approval_expired: "Nobody decided in time, so this tool call was not run.",
};

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function validation(detail) {
  if (!Array.isArray(detail)) return String(detail);
  return detail
    .map((item) => {
      const field = (item.loc || []).filter((part) => part !== "body").at(-1);
      const message = String(item.msg || "is not valid").replace(/^Value error, /, "");
      return field ? `${field}: ${message}` : message;
    })
    .join(". ");
}

export function sentence(error) {
  if (!error || !error.error) return "Something went wrong. Check your connection and try again.";
  if (error.error === "rate_limited") {
    const wait = error.retryAfter ? ` Try again in ${plural(Math.ceil(error.retryAfter), "second")}.` : "";
    return `You are sending requests too quickly.${wait || " Wait a moment."}`;
  }
  if (error.error === "validation_error") return `Please check what you entered. ${validation(error.detail)}`;
  if (error.error === "unauthorized") return "Your session has ended. Log in again to continue.";
  return SENTENCES[error.error] || (typeof error.detail === "string" ? error.detail : "Something went wrong.");
}
