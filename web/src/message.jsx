import { useState } from "preact/hooks";
import * as api from "./api.js";
import { sentence } from "./errors.js";
import { ThumbDown, ThumbUp } from "./icons.jsx";
import { renderMarkdown } from "./markdown.js";

export function ToolSteps({ calls }) {
  if (!calls?.length) return null;
  return (
    <div class="tools">
      {calls.map((call, i) => (
        <details key={i} class={`tool ${call.is_error ? "failed" : ""}`}>
          <summary>
            {call.is_error ? "Tool failed: " : "Used "}
            <code>{call.name}</code>
          </summary>
          <div class="tool-body">
            <span class="label">Arguments</span>
            <pre>{JSON.stringify(call.args, null, 2)}</pre>
            {call.result != null && (
              <>
                <span class="label">Result</span>
                <pre>{call.result}</pre>
              </>
            )}
          </div>
        </details>
      ))}
    </div>
  );
}

export function Feedback({ sessionId, message, onChange }) {
  const [rating, setRating] = useState(message.feedback?.rating || null);
  const [comment, setComment] = useState(message.feedback?.comment || "");
  const [asking, setAsking] = useState(false);
  const [error, setError] = useState("");
  const path = `/sessions/${sessionId}/messages/${message.id}/feedback`;

  const save = async (next, text) => {
    setError("");
    try {
      if (next === null) await api.del(path);
      else await api.put(path, { rating: next, comment: text || null });
      setRating(next);
      onChange?.(next === null ? null : { rating: next, comment: text || null });
    } catch (err) {
      setError(sentence(err));
    }
  };
  const choose = (next) => {
    if (next === rating) {
      setAsking(false);
      return save(null, "");
    }
    setAsking(true);
    return save(next, comment);
  };
  return (
    <span class="feedback">
      <button type="button" class={`icon ${rating === "up" ? "chosen" : ""}`} aria-pressed={rating === "up"} aria-label="Good answer" title="Good answer" onClick={() => choose("up")}>
        <ThumbUp />
      </button>
      <button type="button" class={`icon ${rating === "down" ? "chosen" : ""}`} aria-pressed={rating === "down"} aria-label="Bad answer" title="Bad answer" onClick={() => choose("down")}>
        <ThumbDown />
      </button>
      {asking && rating && (
        <form
          class="feedback-comment"
          onSubmit={(e) => {
            e.preventDefault();
            save(rating, comment).then(() => setAsking(false));
          }}
        >
          <input
            aria-label="Feedback comment"
            placeholder="What was good or bad? (optional)"
            maxLength={2000}
            value={comment}
            onInput={(e) => setComment(e.target.value)}
          />
          <button type="submit" class="small">
            Send
          </button>
        </form>
      )}
      {error && <span class="error">{error}</span>}
    </span>
  );
}

export function Markdown({ text }) {
  return <div class="markdown" dangerouslySetInnerHTML={{ __html: renderMarkdown(text) }} />;
}
