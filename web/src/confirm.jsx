// The inline "are you sure?" of every destructive action: a question, then yes (red) or no.
export function Confirm({ children, yes = "Delete", no = "Keep", onYes, onNo }) {
  return (
    <span class="confirm">
      {children}
      <button type="button" class="danger small" onClick={onYes}>
        {yes}
      </button>
      <button type="button" class="small" onClick={onNo}>
        {no}
      </button>
    </span>
  );
}
