/**
 * Removes secrets from text that may reach a log, an error, an event or a manifest.
 * Known secret values are replaced wherever they occur; passwords inside connection URLs are masked even when unknown.
 */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@\s/]+)(@)/gi;
const KEYWORD_PASSWORD = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi;
const SLACK_WEBHOOK = /https:\/\/hooks\.slack\.com\/[^\s"']+/gi;

export function redact(text: string, secrets: Iterable<string | undefined> = []): string {
  let out = text;
  const values = [...secrets].filter((s): s is string => typeof s === "string" && s.length >= 3);
  // Longest first, so that a secret containing another is masked whole.
  values.sort((a, b) => b.length - a.length);
  for (const value of values) {
    out = out.split(value).join("***");
    const encoded = encodeURIComponent(value);
    if (encoded !== value) out = out.split(encoded).join("***");
  }
  return out.replace(URL_PASSWORD, "$1***$3").replace(KEYWORD_PASSWORD, "$1***").replace(SLACK_WEBHOOK, "https://hooks.slack.com/***");
}
