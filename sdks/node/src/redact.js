/** The URL with any password replaced by `***`, for messages and logs. */
export function redact(url) {
  return String(url).replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*:)[^/?#@]*@/i, '$1***@');
}
