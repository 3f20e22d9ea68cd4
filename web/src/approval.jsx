// The card of a tool call that waits for a person: what it would do, until when, and approve, edit or reject.
import { useEffect, useRef, useState } from "preact/hooks";
import { dateTime } from "./dates.js";
import { sentence } from "./errors.js";

// The tools that ask first, in plain words; `field` is the argument a person may rewrite.
const TOOLS = {
  remember_this: {
    title: "Save to memory",
    intro: "The agent wants to remember this about you, in every chat where memory is on:",
    field: "fact",
    label: "Fact to save",
  },
};

export function Approval({ interrupt, onDecide }) {
  const [mode, setMode] = useState("ask"); // ask, edit or reject
  const [text, setText] = useState("");
  const [reason, setReason] = useState("");
  const [pending, setPending] = useState(false);
  const [error, setError] = useState("");
  const input = useRef(null); // the field of the form open, or Approve
  const used = useRef(false); // the card takes the focus only once someone has used it
  const calls = interrupt.tool_calls;
  const only = calls.length === 1 ? TOOLS[calls[0].name] : null; // one call, of a tool a person may edit
  const titles = [...new Set(calls.map((c) => TOOLS[c.name]?.title ?? `Run ${c.name}`))];
  const heading = `approval-${interrupt.run_id}`;

  useEffect(() => {
    if (used.current) input.current?.focus();
    used.current = true;
  }, [mode]);

  const decide = async (answer) => {
    setError("");
    setPending(true);
    try {
      await onDecide(answer); // the card is replaced by the run's continuation
    } catch (err) {
      setError(sentence(err));
      setPending(false);
    }
  };
  const back = () => {
    setError("");
    setMode("ask");
  };
  const onKeyDown = (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      back();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.target.tagName === "TEXTAREA") {
      event.preventDefault();
      event.target.form.requestSubmit();
    }
  };

  return (
    <section class="approval" aria-labelledby={heading}>
      <p class="approval-kind">Needs your approval</p>
      <h2 id={heading}>{titles.join(", ")}</h2>
      {mode !== "edit" &&
        calls.map((call, i) => {
          const tool = TOOLS[call.name];
          return tool ? (
            <div key={i} class="approval-call">
              <p>{tool.intro}</p>
              <blockquote>{String(call.args[tool.field] ?? "")}</blockquote>
            </div>
          ) : (
            <div key={i} class="approval-call">
              <code>{call.name}</code>
              <pre>{JSON.stringify(call.args, null, 2)}</pre>
            </div>
          );
        })}
      {interrupt.expires_at && (
        <p class="hint">Nothing is run until you decide. It waits until {dateTime(interrupt.expires_at)}.</p>
      )}
      {mode === "edit" && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (text.trim()) decide({ decision: "edit", args: { ...calls[0].args, [only.field]: text.trim() } });
          }}
        >
          <label>
            {only.label}
            <textarea ref={input} rows={2} maxLength={500} required value={text} onInput={(e) => setText(e.target.value)} onKeyDown={onKeyDown} />
          </label>
          <div class="row">
            <button type="submit" class="primary small" disabled={pending || !text.trim()}>
              Save
            </button>
            <button type="button" class="small" onClick={back}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {mode === "reject" && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            decide({ decision: "reject", ...(reason.trim() && { reason: reason.trim() }) });
          }}
        >
          <label>
            Why not? (optional, the agent is told)
            <input ref={input} maxLength={2000} value={reason} onInput={(e) => setReason(e.target.value)} onKeyDown={onKeyDown} />
          </label>
          <div class="row">
            <button type="submit" class="danger small" disabled={pending}>
              Reject
            </button>
            <button type="button" class="small" onClick={back}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {mode === "ask" && (
        <div class="row wrap">
          <button ref={input} type="button" class="primary small" disabled={pending} onClick={() => decide({ decision: "approve" })}>
            Approve
          </button>
          {only && (
            <button
              type="button"
              class="small"
              disabled={pending}
              onClick={() => {
                setText(String(calls[0].args[only.field] ?? ""));
                setMode("edit");
              }}
            >
              Edit
            </button>
          )}
          <button type="button" class="small" disabled={pending} onClick={() => setMode("reject")}>
            Reject
          </button>
        </div>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
