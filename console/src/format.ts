/** A timestamp in the reader's locale, or a dash. */
export function when(value: string | null | undefined): string {
  return value ? new Date(value).toLocaleString() : "—";
}

/** Any JSON value, indented, for `<pre>`. */
export function json(value: unknown): string {
  return value === undefined ? "—" : JSON.stringify(value, null, 2);
}
