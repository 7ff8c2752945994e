/**
 * A file name that may be cut to fit, cut in the middle: the head shrinks with an ellipsis, the tail (where names
 * in one folder differ: "person1_bacteria_1.jpeg" vs "..._2.jpeg") always shows. The full name is the tooltip.
 */
export function FileName({ name, title }: { name: string; title?: string }) {
  // The last up-to-14 characters, never more than half the name (a short name is shown whole by the head).
  const n = Math.min(14, Math.floor(name.length / 2));
  const head = name.slice(0, name.length - n);
  const tail = name.slice(name.length - n);
  return (
    <span className="file-name" title={title ?? name} data-testid="file-name">
      <span className="file-name-head">{head}</span>
      <span className="file-name-tail">{tail}</span>
    </span>
  );
}
