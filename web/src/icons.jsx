// Line icons drawn inline: no icon font or emoji font needed on the reader's machine.
function Icon({ children, flip }) {
  return (
    <svg
      class={`svg-icon ${flip ? "flip" : ""}`}
      viewBox="0 0 24 24"
      width="18"
      height="18"
      fill="none"
      stroke="currentColor"
      stroke-width="1.8"
      stroke-linecap="round"
      stroke-linejoin="round"
      aria-hidden="true"
    >
      {children}
    </svg>
  );
}

export const Pencil = () => (
  <Icon>
    <path d="M4 20h4L19 9l-4-4L4 16v4z" />
    <path d="M13.5 6.5l4 4" />
  </Icon>
);

export const Trash = () => (
  <Icon>
    <path d="M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13" />
  </Icon>
);

const thumb = (
  <>
    <path d="M7 11v9H4v-9h3z" />
    <path d="M7 11l4-7c1.6 0 2.6 1.2 2.2 3L12.5 11H19a2 2 0 0 1 2 2.4l-1.4 5A2.2 2.2 0 0 1 17.5 20H7" />
  </>
);

export const ThumbUp = () => <Icon>{thumb}</Icon>;
export const ThumbDown = () => <Icon flip>{thumb}</Icon>;

export const Menu = () => (
  <Icon>
    <path d="M4 6h16M4 12h16M4 18h16" />
  </Icon>
);
