// Sidebar groups and short times, in the reader's own time zone.
const DAY = 86_400_000;

function startOfDay(date) {
  const d = new Date(date);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function groupByDate(sessions, now = new Date()) {
  const today = startOfDay(now);
  const groups = [
    { label: "Today", items: [] },
    { label: "Yesterday", items: [] },
    { label: "Last 7 days", items: [] },
    { label: "Older", items: [] },
  ];
  for (const session of sessions) {
    const day = startOfDay(session.created_at);
    const index = day >= today ? 0 : day >= today - DAY ? 1 : day >= today - 7 * DAY ? 2 : 3;
    groups[index].items.push(session);
  }
  return groups.filter((group) => group.items.length);
}

export function shortTime(value) {
  if (!value) return "";
  const date = new Date(value);
  const sameDay = startOfDay(date) === startOfDay(new Date());
  return sameDay
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" });
}

// A moment later today as its time, another day's with its date too.
export function dateTime(value) {
  const date = new Date(value);
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return startOfDay(date) === startOfDay(new Date()) ? time : `${date.toLocaleDateString([], { month: "short", day: "numeric" })}, ${time}`;
}
